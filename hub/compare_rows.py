"""The two leaderboard rows of `evalhub compare`: finding them, their scorecards, and the printed comparison.

A row is ``VARIANT`` (its torch model) or ``VARIANT@ENGINE``, where ENGINE is what
``--engine`` takes (an engine id, unique prefix or backend name) or exactly what the
leaderboard's ``engine`` column shows (``torch-fp32`` for the torch model, else an engine
id), so a row can be pasted from the leaderboard. Each row is paired through its latest run
on the split that stored per-example predictions; the statistics themselves are computed by
``evaluators/compare.py`` (the CLI joins the two: the core never imports evaluators).
Read-only: nothing here writes the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hub.errors import UserError, clean, quote
from hub.store import Store

TORCH_MODEL = "torch-fp32"   # the engine column of runs on a variant's own torch model
SHOWN_DISAGREEMENTS = 10
TEXT_WIDTH = 80


@dataclass
class Row:
    ref: str          # as the user wrote it
    variant: str      # variant id
    engine: str       # the runs' engine column: TORCH_MODEL or an engine id
    run: dict         # the run whose predictions are paired

    def describe(self) -> dict[str, Any]:
        return {"row": self.ref, "variant": self.variant, "engine": self.engine, "run": self.run["id"],
                "suite": self.run["suite"], "dataset": self.run["dataset"], "data_hash": self.run["data_hash"],
                "n_examples": self.run["n_examples"]}


class DataMismatch(UserError):
    """The two rows were scored on different data for the split: their predictions cannot be paired."""


def split_ref(store: Store, ref: str) -> tuple[str, str | None]:
    """(variant ref, engine ref or None); a variant whose id or name holds '@' is taken whole."""
    if any(ref in (v.id, v.name) for v in store.list_variants()):
        return ref, None
    variant, sep, engine = ref.rpartition("@")
    if not sep:
        return ref, None
    if not variant or not engine:
        raise UserError(f"row {quote(ref)} is not VARIANT or VARIANT@ENGINE (e.g. a row of `evalhub leaderboard`: "
                        "its variant, '@', its engine)")
    return variant, engine


def resolve_row(store: Store, ref: str, split: str) -> Row:
    """The row's variant and engine, and its latest run on ``split`` with stored predictions."""
    variant_ref, engine_ref = split_ref(store, ref)
    record = store.get_variant(variant_ref)
    engine = TORCH_MODEL if engine_ref in (None, TORCH_MODEL) else store.get_engine(engine_ref, variant_id=record.id).id
    runs = [r for r in store.runs(record.id) if r["engine"] == engine and r["split"] == split]
    for run in reversed(runs):
        if store.predictions(run["id"], limit=1):
            return Row(ref, record.id, engine, run)
    on = "its torch model" if engine == TORCH_MODEL else f"engine {engine}"
    flag = "" if engine == TORCH_MODEL else f" --engine {engine}"
    raise UserError(f"row {quote(ref)}: {record.id} has no run of {on} on split {quote(split)} with stored "
                    f"predictions; make one with `evalhub eval {record.id}{flag} --split {clean(split, 60)}`")


def resolve_pair(store: Store, ref_a: str, ref_b: str, split: str) -> tuple[Row, Row]:
    """Both rows; UserError when their runs were scored on different data (nothing to pair)."""
    a, b = resolve_row(store, ref_a, split), resolve_row(store, ref_b, split)
    if a.run["data_hash"] != b.run["data_hash"]:
        raise DataMismatch(f"{quote(ref_a)} and {quote(ref_b)} were scored on different data for split {quote(split)} "
                        f"(data hash {a.run['data_hash'][:12]} vs {b.run['data_hash'][:12]}), so their predictions "
                        "cannot be paired; compare rows evaluated on the same data")
    return a, b


def payload(store: Store, split: str, a: Row, b: Row, paired: dict) -> dict[str, Any]:
    """The comparison as one JSON-able dict (what ``evalhub compare --format json`` prints and the app's
    ``/compare`` returns): the two rows, their scorecards and ``paired`` (a ``PairedComparison.to_dict()``)."""
    return {"split": split, "a": a.describe(), "b": b.describe(), "scorecard": compare_scorecards(store, a, b),
            "paired": paired}


def scorecard(store: Store, row: Row) -> dict[str, dict]:
    """The row's latest value of every metric on its split (as the leaderboard shows it), by name."""
    card: dict[str, dict] = {}
    for run in store.runs(row.variant):   # oldest first: later runs overwrite
        if run["engine"] == row.engine and run["split"] == row.run["split"]:
            card.update({m["metric"]: m for m in store.metrics(run["id"])})
    return card


def _direction(delta: float, higher_is_better: bool) -> str:
    if delta == 0 or math.isnan(delta):
        return "same" if delta == 0 else ""
    return "better" if (delta > 0) == higher_is_better else "worse"


def compare_scorecards(store: Store, a: Row, b: Row) -> list[dict]:
    """Every metric both rows have: A, B, delta B − A, and whether B is better by that metric."""
    card_a, card_b = scorecard(store, a), scorecard(store, b)
    out = []
    for name in sorted(card_a.keys() & card_b.keys()):
        va, vb, hib = card_a[name]["value"], card_b[name]["value"], bool(card_a[name]["higher_is_better"])
        out.append({"metric": name, "a": va, "b": vb, "delta": vb - va, "higher_is_better": hib,
                    "b_vs_a": _direction(vb - va, hib)})
    return out


def _delta(delta: float) -> str:
    """``+0.0123``; a change too small for four decimals in scientific form, so it never reads as none."""
    return f"{delta:+.1e}" if delta and abs(delta) < 5e-5 else f"{delta:+.4f}"


def _short(text: str, width: int = TEXT_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def format_comparison(payload: dict, shown: int = SHOWN_DISAGREEMENTS) -> str:
    """The comparison as text: the two rows, their scorecards, the paired test, some disagreements."""
    a, b, p = payload["a"], payload["b"], payload["paired"]
    lines = [f"A  {a['variant']}  engine {a['engine']}  run {a['run']}",
             f"B  {b['variant']}  engine {b['engine']}  run {b['run']}",
             f"split {payload['split']}, data hash {a['data_hash'][:12]}, {p['n']} examples", ""]
    lines += _table(["metric", "A", "B", "delta", "B vs A"],
                    [[m["metric"], f"{m['a']:.4f}", f"{m['b']:.4f}", _delta(m["delta"]), m["b_vs_a"]]
                     for m in payload["scorecard"]])
    ci = ("" if p["ci_low"] is None else
          f"  {p['confidence']:.0%} CI [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] (paired bootstrap, "
          f"{p['resamples']} resamples)")
    lines += ["", f"paired test on the same {p['n']} examples",
              f"accuracy      A {p['accuracy_a']:.4f}   B {p['accuracy_b']:.4f}",
              f"difference    B - A {p['difference']:+.4f}{ci}",
              f"McNemar       exact p = {p['mcnemar_p']:.4g} ({p['only_a_right'] + p['only_b_right']} discordant pairs)",
              f"counts        both right {p['both_right']}, only A right {p['only_a_right']}, "
              f"only B right {p['only_b_right']}, both wrong {p['both_wrong']}", ""]
    rows = p["disagreements"]
    if not rows:
        return "\n".join(lines + ["the two rows predict the same label on every example"])
    lines.append(f"{len(rows)} examples where A and B predict differently"
                 + (f" (first {shown}; --format json gives all)" if len(rows) > shown else ""))
    lines += _table(["idx", "gold", "A", "B", "text"],
                    [[str(r["idx"]), str(r["label"]), str(r["a_prediction"]), str(r["b_prediction"]), _short(r["text"])]
                     for r in rows[:shown]])
    return "\n".join(lines)
