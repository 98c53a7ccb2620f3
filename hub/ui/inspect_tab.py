"""The Inspect tab: the per-example records behind a variant's robustness, fairness and explanation scores.

Pick a variant; each sub-tab then shows the newest run of it in which its evaluator ran (the
run list says which engine and suite each run used), or the command that fills it. The
``*_view`` functions read the store and return plain data (unit-tested); ``build_inspect_tab``
lays the components out with their first values and wires the tab's own events. Nothing here
loads a model: it only reads what ``evalhub eval`` stored.

The tab's events skip gradio's preprocessing (``preprocess=False``; a drop-down's value is the
plain payload either way): gradio refuses a value outside a drop-down's choices with the value
unescaped and every choice (every variant or run id) listed. Here an unknown variant is one
short ``gr.Error`` (:func:`known_variant`), an unknown run falls back to the newest, and an
example position that is not a number shows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import pandas as pd

from hub.errors import quote
from hub.ui.records import (EXPLAIN, FAIRNESS, FAIRNESS_COLUMNS, FLAGGED_COLUMNS, ROBUSTNESS, ROBUSTNESS_COLUMNS,
                            SCORES, Section, Spans, attribution_spans, example_choices, explanation_heading,
                            fairness_detail, fairness_frame, fairness_summary, flagged_frame, methods_of,
                            no_records_message, robustness_detail, robustness_frame, robustness_summary,
                            run_choices, run_line, scores_frame, section_runs)

HEADER = """\
## Inspect
The examples behind the scores: which perturbations flipped a prediction, which identity-term
swaps changed it, and which words the model leaned on. Pick a variant; each section shows its
newest run that scored it (pick another from the **Run** list).
"""
SCORES_HELP = "\n".join(["Scores of this example (↑ higher is better, ↓ lower is better):"] + [
    f"- `{name}` ({'↑' if better == 'higher' else '↓'}): {what}" for name, (better, what) in SCORES.items()])
ORIGINAL, CHANGED = "#f87171", "#4ade80"  # red: the original words; green: what replaced them


@dataclass
class SectionView:
    """What one sub-tab shows for a variant and run, as plain data."""

    runs: list[tuple[str, str]]
    run: str | None
    notice: str
    table: pd.DataFrame | None = None
    heading: str = ""
    spans: Spans = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    found: bool = False     # there are rows (or examples) to show below the notice


def variant_choices(store: Any) -> list[tuple[str, str]]:
    """(label, value) pairs, "name (id)" -> id, newest first."""
    return [(f"{v.name} ({v.id})", v.id) for v in reversed(store.list_variants())]


def default_variant(store: Any, choices: list[tuple[str, str]]) -> str | None:
    """The newest variant with any records to inspect, else the newest variant."""
    ids = [value for _, value in choices]
    scored = (v for v in ids if any(section_runs(store, v, s) for s in (ROBUSTNESS, FAIRNESS, EXPLAIN)))
    return next(scored, ids[0] if ids else None)


def known_variant(store: Any, variant_id: str | None) -> str | None:
    """``variant_id`` when the store has it (None when empty); gr.Error naming only the user's value."""
    if variant_id and variant_id not in {v.id for v in store.list_variants()}:
        raise gr.Error(f"Unknown variant {quote(variant_id)} (pick one from the Variant list).")
    return variant_id or None


def _position(value: Any) -> int | None:
    """An example's position from a drop-down value (an int, or its text through the API), else None."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _pick(store: Any, variant_id: str | None, section: Section, run_id: str | None) -> tuple[list, dict | None]:
    """The section's runs of the variant (newest first) and the chosen one: ``run_id``, else the newest."""
    runs = section_runs(store, variant_id, section)
    chosen = next((r for r in runs if r["id"] == run_id), runs[0] if runs else None)
    return runs, chosen


def robustness_view(store: Any, variant_id: str | None, run_id: str | None = None) -> SectionView:
    runs, run = _pick(store, variant_id, ROBUSTNESS, run_id)
    if run is None:
        return SectionView([], None, no_records_message(ROBUSTNESS, variant_id),
                           pd.DataFrame(columns=ROBUSTNESS_COLUMNS))
    records = store.records(run["id"], ROBUSTNESS.evaluator)
    table = robustness_frame(records)
    heading, spans = robustness_detail(records[table["#"].iloc[0]]) if len(table) else ("", [])
    return SectionView(run_choices(runs), run["id"], robustness_summary(run, records), table, heading, spans,
                       found=not table.empty)


def robustness_row(store: Any, run_id: str, position: int) -> tuple[str, Spans]:
    return robustness_detail(store.records(run_id, ROBUSTNESS.evaluator)[int(position)])


def fairness_view(store: Any, variant_id: str | None, run_id: str | None = None) -> SectionView:
    """Counterfactual flips of the run, and its texts flagged for toxicity or PII (``extra``)."""
    runs, run = _pick(store, variant_id, FAIRNESS, run_id)
    if run is None:
        return SectionView([], None, no_records_message(FAIRNESS, variant_id), pd.DataFrame(columns=FAIRNESS_COLUMNS),
                           extra={"flagged_notice": "", "flagged": pd.DataFrame(columns=FLAGGED_COLUMNS)})
    metrics = {m["metric"]: m["value"] for m in store.metrics(run["id"])}
    records = store.records(run["id"], FAIRNESS.evaluator)
    table = fairness_frame(records)
    heading, spans = fairness_detail(records[0]) if records else ("", [])
    flagged = flagged_frame(store.records(run["id"], "toxicity"), store.records(run["id"], "pii"))
    return SectionView(run_choices(runs), run["id"], fairness_summary(run, records, metrics), table, heading, spans,
                       extra={"flagged_notice": flagged_notice(metrics, flagged), "flagged": flagged},
                       found=not table.empty)


def flagged_notice(metrics: dict[str, float], flagged: pd.DataFrame) -> str:
    if not any(m.startswith(("toxicity_", "pii_rate")) for m in metrics):
        return "Toxicity and PII were not scored in this run (`--suite safety` scores them)."
    if flagged.empty:
        return "No text in this run reached the toxicity threshold or contains PII."
    return (f"{len(flagged)} text{'s' * (len(flagged) != 1)} flagged as toxic or holding PII "
            "(e-mail addresses, phone, card and IBAN numbers are shown redacted).")


def fairness_row(store: Any, run_id: str, position: int) -> tuple[str, Spans]:
    return fairness_detail(store.records(run_id, FAIRNESS.evaluator)[int(position)])


def explanation(store: Any, run_id: str | None, position: int | None,
                method: str | None) -> tuple[str, Spans, pd.DataFrame]:
    """Heading, word attributions and score table of one explained example under one method."""
    records = store.records(str(run_id), EXPLAIN.evaluator) if run_id else []
    position = _position(position)
    if not records or position is None or not 0 <= position < len(records):
        return "", [], pd.DataFrame(columns=["score", "better"])
    record = records[position]
    methods = methods_of(record)
    method = method if method in methods else methods[0]
    return explanation_heading(record, method), attribution_spans(record, method), scores_frame(record)


def explain_view(store: Any, variant_id: str | None, run_id: str | None = None) -> SectionView:
    """The run's explained examples (``extra``: examples, methods) and the first one under the first method."""
    runs, run = _pick(store, variant_id, EXPLAIN, run_id)
    empty = {"examples": [], "methods": [], "scores": pd.DataFrame(columns=["score", "better"])}
    if run is None:
        return SectionView([], None, no_records_message(EXPLAIN, variant_id), extra=empty)
    records = store.records(run["id"], EXPLAIN.evaluator)
    if not records:
        return SectionView(run_choices(runs), run["id"], f"{run_line(run, EXPLAIN.evaluator)}: no example was explained.", extra=empty)
    methods = methods_of(records[0])
    heading, spans, scores = explanation(store, run["id"], 0, methods[0])
    notice = (f"{run_line(run, EXPLAIN.evaluator)}: {len(records)} examples explained with {', '.join(methods)}. "
              "Pick an example and a method; ✗ marks a wrong prediction.")
    return SectionView(run_choices(runs), run["id"], notice, None, heading, spans, found=True,
                       extra={"examples": example_choices(records), "methods": methods, "scores": scores})


# -- gradio -------------------------------------------------------------------------------------
def _run_dropdown(view: SectionView, what: str) -> gr.Dropdown:
    return gr.Dropdown(choices=view.runs, value=view.run, label="Run",
                       info=f"Runs of this variant that scored {what}, newest first.")


def _diff_text(view: SectionView, changed: str) -> gr.HighlightedText:
    return gr.HighlightedText(view.spans, label=f"Original vs {changed} (selected row)", show_legend=True,
                              show_inline_category=False, color_map={"original": ORIGINAL, changed: CHANGED},
                              visible=view.found)


def _table(view: SectionView, label: str, numbers: set[str]) -> gr.Dataframe:
    return gr.Dataframe(value=view.table, label=label, interactive=False, visible=view.found, wrap=True,
                        datatype=["number" if c in numbers else "str" for c in view.table.columns],
                        show_search="search", max_height=420, buttons=["fullscreen", "copy"])


def _robustness_values(view: SectionView) -> list:
    """Notice, table, heading and diff as plain values (what the API returns), then the visibility of
    the table and diff (for a gr.State, which the API leaves out)."""
    return [view.notice, view.table, view.heading, view.spans, [view.found, view.found]]


def _fairness_values(view: SectionView) -> list:
    flagged = view.extra["flagged"]
    return [view.notice, view.table, view.heading, view.spans, view.extra["flagged_notice"], flagged,
            [view.found, view.found, not flagged.empty]]


def _shown(flags: list[bool]) -> list:
    return [gr.update(visible=bool(flag)) for flag in flags]


def _robustness_updates(view: SectionView) -> list:
    return [view.notice, gr.Dataframe(value=view.table, visible=view.found), view.heading,
            gr.HighlightedText(value=view.spans, visible=view.found)]


def _fairness_updates(view: SectionView) -> list:
    flagged = view.extra["flagged"]
    return [*_robustness_updates(view), view.extra["flagged_notice"],
            gr.Dataframe(value=flagged, visible=not flagged.empty)]


def _explain_updates(view: SectionView) -> list:
    methods = view.extra["methods"]
    return [view.notice,
            gr.Dropdown(choices=view.extra["examples"], value=0 if view.found else None, visible=view.found),
            gr.Dropdown(choices=methods, value=methods[0] if methods else None, visible=view.found),
            view.heading, gr.HighlightedText(value=view.spans, visible=view.found),
            gr.Dataframe(value=view.extra["scores"], visible=view.found), gr.Markdown(visible=view.found)]


def _select_position(evt: gr.SelectData) -> int:
    """The record position of the clicked row: its ``#`` cell (right even when the table is sorted)."""
    return int(float(evt.row_value[0]))


def _robustness_section(view: SectionView) -> tuple[gr.Dropdown, list]:
    """The run list, then notice, table, heading and diff."""
    run = _run_dropdown(view, "robustness")
    return run, [gr.Markdown(view.notice), _table(view, "Flips and successful attacks", {"#", "example"}),
                 gr.Markdown(view.heading), _diff_text(view, "perturbed")]


def _fairness_section(view: SectionView) -> tuple[gr.Dropdown, list]:
    """The run list, then notice, table, heading, diff, flagged-texts notice and table."""
    run = _run_dropdown(view, "counterfactual fairness")
    flagged = view.extra["flagged"]
    return run, [gr.Markdown(view.notice),
                 _table(view, "Identity-term swaps that changed the prediction", {"#", "example", "|Δp|"}),
                 gr.Markdown(view.heading), _diff_text(view, "counterfactual"),
                 gr.Markdown(view.extra["flagged_notice"]),
                 gr.Dataframe(value=flagged, label="Flagged texts", interactive=False, wrap=True,
                              visible=not flagged.empty, datatype=["number", "str", "str", "number", "str"],
                              max_height=300)]


def _explain_section(view: SectionView) -> tuple[gr.Dropdown, list]:
    """The run list, then notice, example and method lists, heading, attributions, scores and their help."""
    run = _run_dropdown(view, "explanations")
    notice = gr.Markdown(view.notice)
    methods = view.extra["methods"]
    with gr.Row():
        example = gr.Dropdown(choices=view.extra["examples"], value=0 if view.found else None, label="Example",
                              scale=4, visible=view.found)
        method = gr.Dropdown(choices=methods, value=methods[0] if methods else None, label="Method", scale=1,
                             visible=view.found)
    return run, [notice, example, method, gr.Markdown(view.heading),
                 gr.HighlightedText(view.spans, label="Word attributions (scaled to [-1, 1])", show_legend=True,
                                    show_inline_category=False, visible=view.found),
                 gr.Dataframe(value=view.extra["scores"], label="Faithfulness and sanity", interactive=False,
                              visible=view.found),
                 gr.Markdown(SCORES_HELP, visible=view.found)]


def build_inspect_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out with its first values and wire its events; the app runs ``reload`` on page
    load and when the store changes."""
    store = ctx.store
    choices = variant_choices(store)
    first = default_variant(store, choices)
    gr.Markdown(HEADER)
    with gr.Row():
        variant = gr.Dropdown(choices=choices, value=first, label="Variant", scale=4)
        refresh = gr.Button("Refresh", variant="secondary", size="sm", scale=0, min_width=100)
    with gr.Tab("Robustness"):
        rob_run, rob_ui = _robustness_section(robustness_view(store, first))
    with gr.Tab("Fairness & safety"):
        fair_run, fair_ui = _fairness_section(fairness_view(store, first))
    with gr.Tab("Explanations"):
        exp_run, exp_ui = _explain_section(explain_view(store, first))

    def show_variant(variant_id: str | None) -> list:
        variant_id = known_variant(store, variant_id)
        return [*_run_and(robustness_view(store, variant_id), _robustness_updates),
                *_run_and(fairness_view(store, variant_id), _fairness_updates),
                *_run_and(explain_view(store, variant_id), _explain_updates)]

    def reload(current: str | None) -> list:
        fresh = variant_choices(store)
        value = current if current in [v for _, v in fresh] else default_variant(store, fresh)
        return [gr.Dropdown(choices=fresh, value=value), *show_variant(value)]

    def view_of(view: Any, shape: Any) -> Any:
        return lambda variant_id, run_id: shape(view(store, known_variant(store, variant_id), run_id))

    raw = {"preprocess": False}     # our checks, not gradio's choice check (see the module docstring)
    sections = [rob_run, *rob_ui, fair_run, *fair_ui, exp_run, *exp_ui]
    variant.input(show_variant, inputs=variant, outputs=sections, api_visibility="private", **raw)
    refresh.click(reload, inputs=variant, outputs=[variant, *sections], api_visibility="private", **raw)
    # a picked run: plain values for the API, then the visibility that follows from them (private)
    rob_shown, fair_shown = gr.State([]), gr.State([])
    rob_run.input(view_of(robustness_view, _robustness_values), inputs=[variant, rob_run],
                  outputs=[*rob_ui, rob_shown], api_name="robustness_records", **raw).then(
        _shown, inputs=rob_shown, outputs=[rob_ui[1], rob_ui[3]], api_visibility="private")
    fair_run.input(view_of(fairness_view, _fairness_values), inputs=[variant, fair_run],
                   outputs=[*fair_ui, fair_shown], api_name="fairness_records", **raw).then(
        _shown, inputs=fair_shown, outputs=[fair_ui[1], fair_ui[3], fair_ui[5]], api_visibility="private")
    exp_run.input(view_of(explain_view, _explain_updates), inputs=[variant, exp_run],
                  outputs=exp_ui, api_visibility="private", **raw)
    gr.on([exp_ui[1].input, exp_ui[2].input], lambda r, e, m: explanation(store, r, e, m),
          inputs=[exp_run, exp_ui[1], exp_ui[2]], outputs=exp_ui[3:6], api_name="explanation", **raw)

    def pick_flip(run_id: str, evt: gr.SelectData) -> tuple[str, Spans]:  # the hint makes gradio pass the event
        return robustness_row(store, run_id, _select_position(evt))

    def pick_swap(run_id: str, evt: gr.SelectData) -> tuple[str, Spans]:
        return fairness_row(store, run_id, _select_position(evt))

    rob_ui[1].select(pick_flip, inputs=rob_run, outputs=rob_ui[2:4], api_visibility="private", **raw)
    fair_ui[1].select(pick_swap, inputs=fair_run, outputs=fair_ui[2:4], api_visibility="private", **raw)
    return {"variant": variant, "refresh": refresh, "reload": [(reload, variant, [variant, *sections])]}


def _run_and(view: SectionView, updates: Any) -> list:
    """The run dropdown's update followed by the section's other updates."""
    return [gr.Dropdown(choices=view.runs, value=view.run), *updates(view)]
