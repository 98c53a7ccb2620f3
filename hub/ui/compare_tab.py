"""The Compare tab: two leaderboard rows side by side, scored on the same examples, and run live.

A row is what the leaderboard shows: a variant's torch model (``VARIANT``) or one of its
engines (``VARIANT@ENGINE``), exactly as ``evalhub compare ROW_A ROW_B`` takes them. The rows
are found and scored by the command's own code: ``hub/compare_rows.py`` (rows, scorecards with
deltas, the JSON payload) and ``evaluators/compare.py`` (paired bootstrap CI of the accuracy
difference, McNemar's exact test, the disagreements). Rows scored on different data for the
split are one short ``gr.Error``, never a traceback.

API endpoints: ``/compare`` (row_a, row_b, split) -> the comparison as JSON, the paired test
in words, the scorecard table and the disagreements table; ``/compare_live`` (row_a, row_b,
text) -> both rows' label probabilities for one text and which engines answered.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import pandas as pd

from hub.compare_rows import TORCH_MODEL, DataMismatch, payload, resolve_pair, resolve_row, split_ref
from hub.errors import UserError, quote
from hub.ui.predictor_cache import TORCH_MODEL as CACHE_TORCH

SCORE_COLUMNS = ["metric", "A", "B", "B − A", "better when", "B vs A"]
DIFF_COLUMNS = ["example", "gold", "A predicts", "B predicts", "text"]
MARKERS = {"better": "▲ B better", "worse": "▼ B worse", "same": "= same", "": ""}
HEADER = """\
## Compare two rows
Pick two leaderboard rows (a variant's torch model or one of its engines). Their scorecards
show side by side; the paired test uses the per-example predictions both stored for the split.
"""


def row_ref(row: dict) -> str:
    """How a leaderboard row is named: ``VARIANT`` for its torch model, else ``VARIANT@ENGINE``."""
    return row["variant"] if row["engine"] == TORCH_MODEL else f"{row['variant']}@{row['engine']}"


def row_choices(store: Any) -> list[tuple[str, str]]:
    """(label, ref) for every leaderboard row, in the leaderboard's order, each ref once."""
    seen: dict[str, str] = {}
    for row in store.leaderboard():
        seen.setdefault(row_ref(row), f"{row['name']} · {row['engine']} ({row['variant']})")
    return [(label, ref) for ref, label in seen.items()]


def default_pair(store: Any, refs: list[str], current_a: str | None = None,
                 current_b: str | None = None) -> tuple[str | None, str | None]:
    """Rows A and B to start on: the kept selections, else the first row and the next one scored
    on the same test data (so the first Compare pairs), else simply the next row."""
    a = current_a if current_a in refs else (refs[0] if refs else None)
    if current_b in refs:
        return a, current_b
    data = {}
    for run in store.runs():                       # oldest first: the latest run of a row wins
        if run["split"] == "test":
            data[row_ref({"variant": run["variant_id"], "engine": run["engine"]})] = run["data_hash"]
    others = [r for r in refs if r != a]
    same = [r for r in others if a in data and data.get(r) == data[a]]
    return a, (same or others or [a])[0]


def split_choices(store: Any) -> list[str]:
    splits = sorted({row["split"] for row in store.leaderboard()})
    return sorted(splits, key=lambda s: s != "test")    # "test" first when there is one


def _row(store: Any, ref: str | None, split: str, which: str) -> Any:
    """The row's variant, engine and run; gr.Error in the app's words (no stored ids listed)."""
    if not ref:
        raise gr.Error(f"Pick row {which} from its list.")
    try:
        return resolve_row(store, str(ref), str(split))
    except UserError:
        if str(ref) in {value for _, value in row_choices(store)}:
            raise gr.Error(f"Row {which} ({quote(ref)}) has no stored predictions on split {quote(split)}: "
                           "pick another split, or evaluate it on this one.") from None
        raise gr.Error(f"Unknown row {quote(ref)} (pick one from the Row {which} list).") from None


def comparison(store: Any, ref_a: str | None, ref_b: str | None, split: str | None) -> dict[str, Any]:
    """The comparison payload of ``evalhub compare --format json``; gr.Error for what cannot be compared."""
    from evaluators.compare import PairingError, paired_comparison

    split = split or "test"
    a, b = _row(store, ref_a, split, "A"), _row(store, ref_b, split, "B")
    try:
        resolve_pair(store, a.ref, b.ref, split)
    except DataMismatch:
        raise gr.Error(f"The two rows were scored on different data for split {quote(split)}, so their "
                       "predictions cannot be paired: compare rows evaluated on the same data.") from None
    try:
        paired = paired_comparison(store.predictions(a.run["id"]), store.predictions(b.run["id"]))
    except PairingError as exc:
        raise gr.Error(f"The two rows cannot be paired: {exc}.") from None
    return payload(store, split, a, b, paired.to_dict())


def paired_sentence(p: dict) -> str:
    """The paired test in words, e.g. "B is more accurate by 1.2 points, 95% CI [0.3, 2.1]; McNemar p =
    0.004 on 213 paired examples"."""
    points = 100 * p["difference"]
    if points == 0:
        head = "A and B are equally accurate"
    else:
        head = f"B is {'more' if points > 0 else 'less'} accurate by {abs(points):.1f} points"
    if p["ci_low"] is not None:
        head += f", {p['confidence']:.0%} CI [{100 * p['ci_low']:.1f}, {100 * p['ci_high']:.1f}]"
    return (f"{head}; McNemar p = {p['mcnemar_p']:.3g} on {p['n']} paired examples "
            f"(accuracy A {p['accuracy_a']:.1%}, B {p['accuracy_b']:.1%}; only A right {p['only_a_right']}, "
            f"only B right {p['only_b_right']}).")


def summary(result: dict) -> str:
    a, b, p = result["a"], result["b"], result["paired"]
    return (f"**A** `{a['variant']}` on engine `{a['engine']}` · **B** `{b['variant']}` on engine `{b['engine']}` · "
            f"split `{result['split']}`, data hash `{a['data_hash'][:12]}`\n\n{paired_sentence(p)}")


def _cell(value: float) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(value, 4)


def scorecard_frame(result: dict) -> pd.DataFrame:
    rows = [[m["metric"], _cell(m["a"]), _cell(m["b"]), _cell(m["delta"]), "↑ higher" if m["higher_is_better"] else "↓ lower",
             MARKERS.get(m["b_vs_a"], "")] for m in result["scorecard"]]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def disagreements_frame(result: dict) -> pd.DataFrame:
    rows = [[d["idx"], d["label"], d["a_prediction"], d["b_prediction"], d["text"]]
            for d in result["paired"]["disagreements"]]
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def compare_view(store: Any, ref_a: str | None, ref_b: str | None, split: str | None) -> tuple:
    """What ``/compare`` returns: JSON, the test in words, scorecard table, disagreements table."""
    result = comparison(store, ref_a, ref_b, split)
    return result, summary(result), scorecard_frame(result), disagreements_frame(result)


# -- live ---------------------------------------------------------------------------------------
def _cache_args(store: Any, ref: str | None, which: str) -> tuple[str, str]:
    """(variant ref, engine for the predictor cache) of a row; the torch model is the cache's "torch"."""
    if not ref:
        raise gr.Error(f"Pick row {which} from its list.")
    try:
        variant, engine = split_ref(store, str(ref))
    except UserError:
        raise gr.Error(f"Unknown row {quote(ref)} (pick one from the Row {which} list).") from None
    return variant, CACHE_TORCH if engine in (None, TORCH_MODEL) else engine


def live(ctx: Any, ref_a: str | None, ref_b: str | None, text: str | None) -> tuple:
    """Both rows' label probabilities for one text, and a line naming who answered."""
    if not text or not text.strip():
        raise gr.Error("The text box is empty: type or paste a sentence to run on both rows.")
    if len(text) > ctx.config.max_text_chars:
        raise gr.Error(f"The text is {len(text):,} characters; the app takes at most {ctx.config.max_text_chars:,}.")
    answers, lines = [], []
    for ref, which in ((ref_a, "A"), (ref_b, "B")):
        record, predictor = ctx.cache.get(*_cache_args(ctx.store, ref, which))
        probs = predictor.predict_proba([text])[0]
        answers.append({label: float(p) for label, p in zip(predictor.labels, probs)})
        lines.append(f"**{which}**: {record.name} (`{record.id}`) on engine `{predictor.engine}`")
    return answers[0], answers[1], " · ".join(lines)


# -- gradio -------------------------------------------------------------------------------------
def _dropdowns(store: Any, current_a: str | None, current_b: str | None) -> tuple:
    """Row A, row B and split drop-downs with fresh choices, keeping selections that still exist."""
    choices = row_choices(store)
    a, b = default_pair(store, [ref for _, ref in choices], current_a, current_b)
    return gr.Dropdown(choices=choices, value=a), gr.Dropdown(choices=choices, value=b)


def build_compare_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire ``/compare`` and ``/compare_live``."""
    store = ctx.store
    choices, splits = row_choices(store), split_choices(store)
    first_a, first_b = default_pair(store, [ref for _, ref in choices])
    gr.Markdown(HEADER)
    with gr.Row():
        row_a = gr.Dropdown(choices=choices, value=first_a, label="Row A", allow_custom_value=True)
        row_b = gr.Dropdown(choices=choices, value=first_b if first_b != first_a else None, label="Row B",
                            allow_custom_value=True)
        split = gr.Dropdown(choices=splits or ["test"], value=(splits or ["test"])[0], label="Split",
                            allow_custom_value=True, scale=0)
    run = gr.Button("Compare", variant="primary")
    words = gr.Markdown()
    scores = gr.Dataframe(headers=SCORE_COLUMNS, label="Scorecards (B − A; ▲ where B is better)",
                          interactive=False, wrap=True, buttons=["copy"])
    diffs = gr.Dataframe(headers=DIFF_COLUMNS, label="Examples where A and B disagree", interactive=False,
                         wrap=True, max_height=420, show_search="search", buttons=["fullscreen", "copy"])
    with gr.Accordion("The comparison as JSON", open=False):
        raw = gr.JSON(label="comparison")
    run.click(lambda a, b, s: compare_view(store, a, b, s), inputs=[row_a, row_b, split],
              outputs=[raw, words, scores, diffs], api_name="compare")

    gr.Markdown("### Both rows on one text")
    text = gr.Textbox(label="Text", lines=3, max_lines=10, placeholder="A sentence to run on row A and row B")
    go = gr.Button("Run both")
    with gr.Row():
        label_a, label_b = gr.Label(label="Row A"), gr.Label(label="Row B")
    who = gr.Markdown()
    gr.on([go.click, text.submit], lambda a, b, t: live(ctx, a, b, t), inputs=[row_a, row_b, text],
          outputs=[label_a, label_b, who], api_name="compare_live")

    def reload(current_a: str | None, current_b: str | None, current_split: str | None) -> tuple:
        fresh = split_choices(store) or ["test"]
        return (*_dropdowns(store, current_a, current_b),
                gr.Dropdown(choices=fresh, value=current_split if current_split in fresh else fresh[0]))

    return {"row_a": row_a, "row_b": row_b, "split": split, "compare": run, "json": raw, "summary": words,
            "scorecard": scores, "disagreements": diffs, "text": text, "live_a": label_a, "live_b": label_b,
            "answered_by": who, "reload": [(reload, [row_a, row_b, split], [row_a, row_b, split])]}
