"""The Leaderboard tab's Pareto plot: which rows are plotted, and the quality/cost frontier.

Pure (no gradio): ``hub/ui/leaderboard.py`` feeds the frame to ``gr.ScatterPlot``. One point
per leaderboard row: a quality metric (y) against a cost (x: p50 latency, throughput or size
on disk), coloured by backend. The frontier holds the rows no other row beats on both axes,
each axis in its own direction (``hub/ui/columns.py`` knows which way is better); the plot
draws the frontier as one more colour series, so it needs no custom JavaScript.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from hub.ui import columns

FRONTIER = "Pareto frontier"     # the series (colour) of the frontier points
SIZE = "size_mb"                 # size on disk of what serves a row (added by the tab from the store)
QUALITY_GROUPS = ("task", "calibration", "robustness", "safety", "faithfulness", "parity")
FRAME_COLUMNS = ["name", "variant", "engine", "split", "backend", "quality", "cost", "series"]
TOOLTIP = ["name", "engine", "split", "quality", "cost"]


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing, non-numeric or NaN cell."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _present(rows: Iterable[dict]) -> set[str]:
    return {k for row in rows for k, v in row.items() if _number(v) is not None}


def quality_choices(rows: list[dict]) -> list[str]:
    """Metrics with a known direction outside efficiency and breakdowns, the task group first."""
    keys = [k for k in _present(rows) if columns.describe(k).better and columns.describe(k).group in QUALITY_GROUPS]
    order = {g: i for i, g in enumerate(QUALITY_GROUPS)}
    first = {name: i for i, name in enumerate(preferred_quality())}
    return sorted(keys, key=lambda k: (order[columns.describe(k).group], first.get(k, len(first)), k))


def preferred_quality() -> tuple[str, ...]:
    """Each registered task's headline metric (accuracy, rougeL, ...), then macro F1."""
    from hub.registries import TASKS

    return tuple(dict.fromkeys([TASKS.get(name).headline_metric for name in TASKS.names()] + ["f1_macro"]))


def cost_choices(rows: list[dict]) -> list[str]:
    """Latency (p50) first, then throughput, then size on disk: the ones the rows hold."""
    present = _present(rows)
    latency = sorted(k for k in present if k.startswith("p50_ms_"))
    throughput = sorted(k for k in present if k.startswith("throughput_"))
    return latency + throughput + ([SIZE] if SIZE in present else [])


def better(metric: str) -> str:
    """"higher" or "lower": the metric's direction (size on disk: lower)."""
    return "lower" if metric == SIZE else (columns.describe(metric).better or "higher")


def frontier(x: Iterable[float], y: Iterable[float], x_better: str = "lower", y_better: str = "higher") -> np.ndarray:
    """A boolean mask of the points no other point dominates (as good on both axes and strictly
    better on one). Equal points do not dominate each other, so ties are all on the frontier."""
    xs = np.asarray(list(x), dtype=float) * (1 if x_better == "lower" else -1)     # both: lower is better
    ys = np.asarray(list(y), dtype=float) * (1 if y_better == "lower" else -1)
    if xs.size == 0:
        return np.zeros(0, dtype=bool)
    no_worse = (xs[None, :] <= xs[:, None]) & (ys[None, :] <= ys[:, None])          # [i, j]: j no worse than i
    strictly = (xs[None, :] < xs[:, None]) | (ys[None, :] < ys[:, None])
    return ~(no_worse & strictly).any(axis=1)


def _reason(metric: str) -> str:
    if metric.startswith(("p50_ms_", "throughput_")):
        return (f"no {metric} (a torch model row has no latency until an engine is built: "
                "`evalhub build-engine VARIANT`)")
    if metric == SIZE:
        return f"no {SIZE} (its files are not in the store)"
    return f"no {metric} (not scored by its runs)"


def plot_data(rows: list[dict], quality: str, cost: str) -> tuple[pd.DataFrame, dict[str, int], list[dict]]:
    """The plot's frame (``FRAME_COLUMNS``: every plotted row once in its backend's series, the
    frontier rows once more in ``FRONTIER``), the rows left out by reason, and the frontier rows
    ordered by cost from best to worst."""
    left_out: dict[str, int] = {}
    kept = []
    for row in rows:
        missing = [m for m in (cost, quality) if _number(row.get(m)) is None]
        if missing:
            left_out[_reason(missing[0])] = left_out.get(_reason(missing[0]), 0) + 1
        else:
            kept.append(row)
    mask = frontier([r[cost] for r in kept], [r[quality] for r in kept], better(cost), better(quality))
    points = [_point(r, quality, cost, str(r.get("backend") or columns.engine_parts(r.get("engine"))[0]))
              for r in kept]
    on_frontier = [r for r, on in zip(kept, mask) if on]
    points += [_point(r, quality, cost, FRONTIER) for r in on_frontier]
    on_frontier.sort(key=lambda r: r[cost] * (1 if better(cost) == "lower" else -1))
    frame = pd.DataFrame(points, columns=FRAME_COLUMNS)
    return frame.astype({"quality": float, "cost": float}), left_out, on_frontier


def _point(row: dict, quality: str, cost: str, series: str) -> dict:
    return {"name": str(row.get("name") or row.get("variant")), "variant": str(row.get("variant")),
            "engine": str(row.get("engine")), "split": str(row.get("split") or ""),
            "backend": str(row.get("backend") or ""), "quality": float(row[quality]), "cost": float(row[cost]),
            "series": series}


def note(left_out: dict[str, int], frontier_rows: list[dict], quality: str, cost: str) -> str:
    """Markdown under the plot: the frontier in cost order, and how many rows were left out and why."""
    lines = []
    if frontier_rows:
        names = ", ".join(f"`{r.get('name') or r.get('variant')} @ {r.get('engine')}` ({quality} {r[quality]:.4g}, "
                          f"{cost} {r[cost]:.4g})" for r in frontier_rows)
        lines.append(f"**Pareto frontier** ({quality} {columns.describe(quality).arrow or '↑'}, "
                     f"{cost} {'↓' if better(cost) == 'lower' else '↑'}): {names}")
    total = sum(left_out.values())
    if total:
        reasons = "; ".join(f"{n} with {reason}" for reason, n in sorted(left_out.items()))
        lines.append(f"{total} row{'s' if total != 1 else ''} not plotted: {reasons}.")
    return "\n\n".join(lines) or "No rows to plot."


BACKEND_COLOURS = {"torch": "#ee8833", "onnxruntime": "#3377cc", "openvino": "#7744aa", "tensorrt": "#44aa55",
                   FRONTIER: "#111111"}
SPARE_COLOURS = ("#cc4466", "#999933", "#33aaaa", "#886644", "#aa66cc", "#668899")


def colour_map(frame: pd.DataFrame) -> dict[str, str]:
    """A colour for every series in the frame (gradio's plot needs each one mapped): known
    backends keep theirs, others take spare colours in order, the frontier is black."""
    out, spare = {}, iter(SPARE_COLOURS * (1 + len(frame) // len(SPARE_COLOURS)))
    for series in dict.fromkeys(frame["series"]):
        out[series] = BACKEND_COLOURS.get(series) or next(spare)
    return out
