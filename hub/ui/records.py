"""What the Inspect tab shows, as plain data: the per-example records evaluators store with a run.

No gradio here, so every shape is unit-tested directly; ``inspect_tab.py`` only wires it.
Records come from ``Store.records(run_id, evaluator)``; their keys are set by
``evaluators/robustness/evaluator.py`` (flips and attacks), ``evaluators/safety/fairness.py``
(``flip_records``), ``evaluators/safety/evaluator.py`` (toxicity and PII rows) and
``evaluators/explain/evaluator.py`` (``_records``).

Hand-written, because no package does it for us: the word diff (``difflib`` over words *and*
the whitespace between them, so a dropped space or an inserted tab shows as an edit) and the
scaling of attributions into the [-1, 1] range ``gr.HighlightedText`` colours as a diverging
scale. A run counts as having run an evaluator when it holds a metric only that evaluator
writes, so a newer run in which nothing flipped is shown as such instead of an older run's flips.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hub.store import describe_steps

Spans = list[tuple[str, Any]]  # gr.HighlightedText's value: (text, category or score or None)


@dataclass(frozen=True)
class Section:
    """One kind of record the tab shows, and the evaluator and suite that write it."""

    title: str        # as the tab and the messages name it
    evaluator: str    # key of its records in the store
    suite: str        # the suite that fills it (`full` does too)
    marker: str       # prefix of a metric only this evaluator writes


ROBUSTNESS = Section("robustness", "robustness", "robustness", "clean_accuracy")
FAIRNESS = Section("fairness", "fairness", "safety", "fairness_coverage")
EXPLAIN = Section("explanation", "explain", "explain", "comprehensiveness/")

ROBUSTNESS_COLUMNS = ["#", "example", "change", "label", "before", "after", "edits"]
FAIRNESS_COLUMNS = ["#", "example", "axis", "group", "swaps", "before", "after", "|Δp|"]
FLAGGED_COLUMNS = ["example", "source", "flag", "toxicity", "text (PII redacted)"]
SCORES = {  # explanation score -> (better when, what it measures)
    "comprehensiveness": ("higher", "drop in p(prediction) when the top words are removed"),
    "sufficiency": ("lower", "drop in p(prediction) when only the top words are kept"),
    "tau_loo": ("higher", "rank agreement (Kendall τ) with leave-one-out"),
    "randomization_rho": ("lower", "rank agreement with the attributions of a randomised model"),
    "completeness_gap": ("lower", "integrated gradients' completeness error"),
}
_TOKENS = re.compile(r"\s+|\S+")
_SPACE_NAMES = {" ": "space", "\t": "tab", "\n": "newline"}


# -- runs ---------------------------------------------------------------------------------
def no_records_message(section: Section, variant_id: str | None) -> str:
    if not variant_id:
        return "**No variants yet.** Run `evalhub demo` (or `evalhub train CONFIG.yaml`), then press **Refresh**."
    return (f"**No {section.title} records for `{variant_id}` yet:** run "
            f"`evalhub eval {variant_id} --suite {section.suite}` (or `--suite full`), then press **Refresh**.")


def section_runs(store: Any, variant_id: str | None, section: Section) -> list[dict]:
    """Runs of the variant in which the section's evaluator ran, newest first."""
    if not variant_id:
        return []
    return [run for run in reversed(store.runs(variant_id))
            if any(m["metric"].startswith(section.marker) for m in store.metrics(run["id"]))]


def run_label(run: dict) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(run["created_at"]))
    return f"{run['id']} · engine {run['engine']} · suite {run['suite']} · {run['split']} split · {when}"


def run_choices(runs: list[dict]) -> list[tuple[str, str]]:
    return [(run_label(run), run["id"]) for run in runs]


def find_run(store: Any, run_id: str | None) -> dict | None:
    return next((run for run in store.runs() if run["id"] == run_id), None) if run_id else None


def run_line(run: dict, evaluator: str | None = None) -> str:
    """Which run this is; with ``evaluator``, also the options its suite gave that evaluator."""
    settings = "".join(f", {s}" for s in describe_steps([step for step in run.get("suite_steps", [])
                                                         if step["evaluator"] == evaluator]))
    return (f"Run `{run['id']}` of `{run['variant_id']}` on engine **{run['engine']}** "
            f"(suite `{run['suite']}`{settings}, {run['split']} split, {run['n_examples']} examples)")


# -- diffs ----------------------------------------------------------------------------------
def word_diff(before: str, after: str, removed: str = "original", added: str = "perturbed") -> Spans:
    """Both texts in one span list: shared text unmarked, replaced words tagged ``removed`` then ``added``."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    spans: Spans = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            spans.append(("".join(a[i1:i2]), None))
            continue
        if i2 > i1:
            spans.append(("".join(a[i1:i2]), removed))
        if j2 > j1:
            spans.append(("".join(b[j1:j2]), added))
    return spans


def _visible(text: str, limit: int = 24) -> str:
    """A piece of text for a table cell: whitespace named ("tab", "2 spaces"), long pieces cut."""
    if text.isspace():
        runs = [(c, len(list(group))) for c, group in itertools.groupby(text)]
        return " + ".join(_SPACE_NAMES.get(c, "space") if n == 1 else f"{n} {_SPACE_NAMES.get(c, 'space')}s"
                          for c, n in runs)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def edit_summary(before: str, after: str, most: int = 3) -> str:
    """The word edits between two texts, e.g. ``bank → ank; −the; +very; space → tab``."""
    a, b = _TOKENS.findall(before), _TOKENS.findall(after)
    edits = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = _visible("".join(a[i1:i2])), _visible("".join(b[j1:j2]))
        if op == "replace":
            edits.append(f"{old} → {new}")
        elif op != "equal":
            edits.append(f"−{old}" if op == "delete" else f"+{new}")
    more = f"; … {len(edits) - most} more" if len(edits) > most else ""
    return "; ".join(edits[:most]) + more


# -- robustness -----------------------------------------------------------------------------
def robustness_frame(records: list[dict]) -> pd.DataFrame:
    """One row per perturbation flip and per successful attack; ``#`` is the record's position."""
    rows = [[pos, r["idx"], r.get("perturbation") or "attack", r["label"], r["before"], r["after"],
             edit_summary(r["text"], r["perturbed"])]
            for pos, r in enumerate(records) if r.get("type") == "flip" or r.get("success")]
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS, dtype=object)


def robustness_summary(run: dict, records: list[dict]) -> str:
    flips = [r for r in records if r.get("type") == "flip"]
    attacks = [r for r in records if r.get("type") == "attack"]
    won = sum(bool(r.get("success")) for r in attacks)
    parts = [f"{len(flips)} perturbation flip{'s' * (len(flips) != 1)} of a correct prediction"]
    parts.append(f"{won} of {len(attacks)} attacks succeeded" if attacks else "no attack records")
    hint = "Select a row to see the text before and after." if flips or won else "Nothing to show: the model held."
    return f"{run_line(run, ROBUSTNESS.evaluator)}: {', '.join(parts)}. {hint}"


def robustness_detail(record: dict) -> tuple[str, Spans]:
    """A heading for one flip or attack, and the diff of its original and perturbed text."""
    if record.get("type") == "attack":
        what = (f"attack ({record['queries']} queries, {record['words_changed']:.0%} of words changed, "
                f"{'succeeded' if record.get('success') else 'failed'})")
    else:
        what = f"perturbation `{record['perturbation']}`"
    heading = (f"**Example {record['idx']}**, {what}: label **{record['label']}**, "
               f"predicted **{record['before']}** before and **{record['after']}** after.")
    return heading, word_diff(record["text"], record["perturbed"], "original", "perturbed")


# -- fairness and safety ----------------------------------------------------------------------
def fairness_frame(records: list[dict]) -> pd.DataFrame:
    rows = [[pos, r["idx"], r["axis"], r["target"], ", ".join(f"{a} → {b}" for a, b in r["swaps"]),
             r["prediction"], r["counterfactual_prediction"], r["dp"]]
            for pos, r in enumerate(records)]
    return pd.DataFrame(rows, columns=FAIRNESS_COLUMNS, dtype=object)


def fairness_summary(run: dict, records: list[dict], metrics: dict[str, float]) -> str:
    coverage = metrics.get("fairness_coverage")
    covered = f" ({coverage:.0%} of the texts name an identity term)" if coverage is not None else ""
    if not records:
        return f"{run_line(run, FAIRNESS.evaluator)}: no identity-term swap changed a prediction{covered}."
    rate = metrics.get("fairness_flip_rate")
    rate = f", a flip rate of {rate:.1%}" if rate is not None else ""
    return (f"{run_line(run, FAIRNESS.evaluator)}: {len(records)} counterfactual{'s' * (len(records) != 1)} changed the "
            f"prediction{rate}{covered}. Select a row to see the two texts.")


def fairness_detail(record: dict) -> tuple[str, Spans]:
    heading = (f"**Example {record['idx']}**, {record['axis']} swapped to **{record['target']}**: "
               f"predicted **{record['prediction']}** → **{record['counterfactual_prediction']}**, "
               f"|Δp| {record['dp']:.3f} (change in the probability of the original prediction).")
    return heading, word_diff(record["original"], record["counterfactual"], "original", "counterfactual")


def flagged_frame(toxicity: list[dict], pii: list[dict]) -> pd.DataFrame:
    """Texts at or above the toxicity threshold and texts with PII; the text shown is always redacted."""
    redacted = {(r["idx"], r["source"]): r for r in pii}
    rows = []
    for r in toxicity:
        if "text" in r:  # the evaluator keeps the text only above its threshold
            hit = redacted.pop((r["idx"], r["source"]), None)
            flag = "toxic" + (f", PII: {', '.join(hit['types'])}" if hit else "")
            rows.append([r["idx"], r["source"], flag, r["toxicity"], hit["redacted"] if hit else r["text"]])
    rows += [[r["idx"], r["source"], f"PII: {', '.join(r['types'])}", None, r["redacted"]]
             for r in redacted.values()]
    rows.sort(key=lambda row: (row[1], row[0]))
    return pd.DataFrame(rows, columns=FLAGGED_COLUMNS, dtype=object)


# -- explanations -----------------------------------------------------------------------------
def example_choices(records: list[dict]) -> list[tuple[str, int]]:
    """(label, position) per explained example: its index, label, prediction and first words."""
    def label(r: dict) -> str:
        p = f" ({r['probability']:.2f})" if r.get("probability") is not None else ""
        mark = "✓" if r["label"] == r["prediction"] else "✗"
        text = r["text"] if len(r["text"]) <= 60 else r["text"][:59] + "…"
        return f"{mark} example {r['idx']}: {r['label']} → {r['prediction']}{p} · {text}"

    return [(label(r), pos) for pos, r in enumerate(records)]


def methods_of(record: dict | None) -> list[str]:
    return list((record or {}).get("attributions", {}))


def normalise(values: list[float | None]) -> list[float | None]:
    """Signed scores divided by the largest magnitude, so they span [-1, 1]; missing stay None."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    scale = max(finite, default=0.0) or 1.0
    return [round(v / scale, 4) if v is not None and math.isfinite(v) else None for v in values]


def attribution_spans(record: dict, method: str) -> Spans:
    """The example's words, each with its normalised attribution, separated by unscored spaces."""
    scores = normalise(record["attributions"][method])
    spans: Spans = []
    for i, (word, score) in enumerate(zip(record["words"], scores)):
        spans += [(" ", None)] if i else []
        spans.append((word, score))
    return spans


def explanation_heading(record: dict, method: str) -> str:
    p = f" (p = {record['probability']:.2f})" if record.get("probability") is not None else ""
    return (f"**Example {record['idx']}**, label **{record['label']}**, predicted **{record['prediction']}**{p}. "
            f"`{method}`: red words push the model towards **{record['prediction']}**, purple words away "
            "from it; the strongest word of the text is ±1.")


def _score_key(key: str, methods: list[str]) -> tuple[str, str]:
    """(score, method): "comprehensiveness/ig" -> ("comprehensiveness", "ig"), "ig_completeness_gap" ->
    ("completeness_gap", "ig")."""
    if "/" in key:
        name, method = key.split("/", 1)
        return name, method
    for method in methods:
        if key.startswith(method + "_"):
            return key[len(method) + 1:], method
    return key, ""


def scores_frame(record: dict) -> pd.DataFrame:
    """The example's faithfulness and sanity scores: one row per score, one column per method."""
    methods = methods_of(record)
    table: dict[str, dict[str, float | None]] = {}
    for key, value in record.get("scores", {}).items():
        name, method = _score_key(key, methods)
        table.setdefault(name, {})[method] = None if value is None else round(value, 4)
    columns = ["score", "better", *methods]
    rows = [[name, SCORES.get(name, ("", ""))[0], *[table[name].get(m) for m in methods]]
            for name in [*[s for s in SCORES if s in table], *[s for s in table if s not in SCORES]]]
    return pd.DataFrame(rows, columns=columns, dtype=object)
