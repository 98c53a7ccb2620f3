"""The Demo tab: pick a variant and an engine, type a text, see the probability of every label,
which engine answered and how fast, and why: an explanation, the safety guard's flags and a
robustness playground.

Predictors load lazily, on the first request for a (variant, engine), into the bounded LRU
cache of ``hub/ui/predictor_cache.py``; building the app loads no model. The engine list
offers the eager torch model and every engine built from the variant; it starts on the
newest engine that passed parity, so the demo answers from what would be served. The model
work lives in ``hub/ui/live.py``; this module lays out and wires.

API endpoints (``gradio_client``):

- ``/predict`` (variant_id, text, engine) -> label confidences. **Batched** (gradio's
  ``batch=True``, ``max_batch_size`` of the app config): concurrent requests share one
  ``predict_proba`` per (variant, engine); one batch runs at a time, so the requests that arrive
  meanwhile wait and form the next one (a first load of a model holds them too). A ``gr.Error``
  raised in a batched function fails every request of its batch, and gradio 6's per-event
  ``validator`` does not work on batched functions, so each request is checked on its own: a
  batch whose requests are all refused for the same reason raises that ``gr.Error`` (a lone bad
  request always gets its error); a bad request batched with others gets a label value whose
  ``label`` is the refusal sentence and whose ``confidences`` are empty, and the others get
  their answers. The app's own Submit first runs a fast, non-batched check, so a user always
  sees the error for their own text.
- ``/explain`` (variant_id, text, engine, method) -> (highlighted words, what explained it);
  method ``occlusion`` (on the engine) or ``ig`` (integrated gradients on the torch model).
- ``/guard`` (text) -> (Markdown flags, JSON report with the PII masked).
- ``/perturb`` (variant_id, text, engine) -> (table of perturbations, Markdown summary).
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from hub.errors import UserError
from hub.ui import live
from hub.ui.predictor_cache import TORCH_MODEL, PredictorCache

log = logging.getLogger(__name__)

DEMO_TAB = "hub.ui.demo_tab:build_demo_tab"   # what a task names as its demo widget to be shown here
TAB_ID, TAB_LABEL = "demo", "Demo"
MAX_TEXT_CHARS = 10_000   # AppConfig.max_text_chars' default

EXAMPLES = [   # shown only while the variant has no stored test-split predictions
    "The central bank raised interest rates again as inflation stayed above its target.",
    "The striker scored twice in the second half to keep his club top of the league.",
    "The band's new album went straight to number one in the charts this week.",
    "Ministers will publish the bill on Tuesday after a heated debate in parliament.",
    "The firm unveiled a faster smartphone chip and an update to its operating system.",
]

NO_VARIANTS = """\
**No variants yet.** Run `evalhub demo` to fine-tune the default model, then reload this page
(or press **Refresh** on the Leaderboard tab).
"""
METHODS = [("occlusion (leave one word out, on the chosen engine)", live.OCCLUSION),
           ("integrated gradients (on the variant's torch model)", live.IG)]
TABLE_HEADERS = ["perturbation", "perturbed text", "prediction", "Δp (original prediction)", "flipped"]


def check(text: Any, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``text`` when the demo takes it; gr.Error with the reason otherwise."""
    try:
        return live.check_text(text, max_chars)
    except live.Refused as exc:
        raise gr.Error(str(exc)) from None


def classify(cache: PredictorCache, variant_id: str | None, text: str | None,
             engine: str | None = None, max_chars: int = MAX_TEXT_CHARS) -> dict[str, float]:
    """Probability of every label for one text (unbatched)."""
    check(text, max_chars)
    _, predictor = cache.get(variant_id, engine)
    return live.confidences(predictor.labels, live.timed_proba(predictor, [text])[0][0])


def answered_by(cache: PredictorCache, variant_id: str | None, engine: str | None = None,
                timing: tuple[str, float, int] | None = None) -> str:
    """The line under an answer; it never loads a model (the answer's own request did)."""
    record, key = cache.resolve(variant_id, engine)
    predictor = cache.peek(key)
    served = timing[0] if timing else (predictor.engine if predictor is not None else key[1])
    took = live.timing_line(timing[1], timing[2]) if timing else ""
    return f"Answered by **{record.name}** (`{record.id}`) on engine `{served}`{took}."


def variant_choices(store: Any, widget: str = DEMO_TAB) -> list[tuple[str, str]]:
    """(label, value) pairs for the dropdown: "name (id)" -> id, newest first, of the variants
    whose task demos on ``widget`` (a ``Task.demo_tab``; this tab's by default)."""
    from hub.registries import TASKS

    variants = [v for v in store.list_variants() if v.task in TASKS and TASKS.get(v.task).demo_tab == widget]
    return [(f"{v.name} ({v.id})", v.id) for v in reversed(variants)]


def default_variant(store: Any, choices: list[tuple[str, str]], preferred: str | None = None) -> str | None:
    """``preferred`` (the app config's default_variant) when it is on show, else the leaderboard's
    best variant that can be demoed, else the newest one."""
    ids = [value for _, value in choices]
    if preferred:
        try:
            found = store.get_variant(preferred).id
        except UserError:
            found = None
        if found in ids:
            return found
    best = [row["variant"] for row in store.leaderboard() if row["variant"] in ids]
    return (best or ids or [None])[0]


def pick_variant(store: Any, current: str | None, preferred: str | None = None,
                 widget: str = DEMO_TAB) -> tuple[list, str | None]:
    """The variant choices of ``widget``, and the selection: ``current`` while it exists, else the default."""
    choices = variant_choices(store, widget)
    ids = [value for _, value in choices]
    return choices, current if current in ids else default_variant(store, choices, preferred)


def refresh_variants(store: Any, current: str | None, preferred: str | None = None) -> gr.Dropdown:
    """Re-read the store's variants, keeping the selection when it still exists."""
    choices, value = pick_variant(store, current, preferred)
    return gr.Dropdown(choices=choices, value=value)


def engine_choices(store: Any, variant_id: str | None) -> list[tuple[str, str]]:
    """(label, value) pairs: the torch model, then the variant's engines, newest first."""
    choices = [("torch model (eager fp32)", TORCH_MODEL)]
    if variant_id:
        for engine in reversed(store.list_engines(variant_id)):
            verdict = "parity passed" if engine.parity.get("passed") else "parity failed"
            choices.append((f"{engine.id} ({verdict})", engine.id))
    return choices


def default_engine(store: Any, variant_id: str | None) -> str:
    """The newest engine of the variant that passed parity, else the torch model."""
    best = store.best_engine(variant_id) if variant_id else None
    return best.id if best else TORCH_MODEL


def refresh_engines(store: Any, variant_id: str | None) -> gr.Dropdown:
    return gr.Dropdown(choices=engine_choices(store, variant_id), value=default_engine(store, variant_id))


def variants_notice(store: Any) -> gr.Markdown:
    return gr.Markdown(visible=not variant_choices(store))


def example_samples(store: Any, variant_id: str | None, max_chars: int = MAX_TEXT_CHARS) -> list[list[str]]:
    """gr.Dataset samples: a few test-split texts per label of the variant, else the fallback."""
    try:
        texts = live.split_examples(store, variant_id, max_chars=max_chars)
    except UserError:
        texts = []
    return [[text] for text in (texts or EXAMPLES)]


def examples_update(store: Any, variant_id: str | None, max_chars: int = MAX_TEXT_CHARS) -> gr.Dataset:
    samples = example_samples(store, variant_id, max_chars)
    where = "the variant's test split" if samples != [[t] for t in EXAMPLES] else "generic news (no stored test run)"
    return gr.Dataset(samples=samples, label=f"Examples from {where}")


# -- the model-side endpoints ------------------------------------------------------------------------
class Handlers:
    """The tab's event functions over one app context (cache, store, limits)."""

    def __init__(self, ctx: Any) -> None:
        self.cache = ctx.cache
        self.max_chars = ctx.config.max_text_chars
        self.timings = live.Timings()

    def check(self, variant_id: str | None, text: str | None, engine: str | None) -> None:
        """The fast, unbatched check the UI runs before the batched /predict (no model loads)."""
        check(text, self.max_chars)
        self.cache.resolve(variant_id, engine)

    def _resolve(self, variant_id: Any, engine: Any) -> Any:
        try:
            return self.cache.resolve(variant_id, engine)[1]
        except gr.Error as exc:
            raise live.Refused(exc.message) from None

    def _load(self, key: tuple[str, str]) -> Any:
        try:
            return self.cache.get(*key)[1]
        except gr.Error as exc:
            raise live.Refused(exc.message) from None

    def predict(self, variants: list, texts: list, engines: list) -> list[list[Any]]:
        """Batched /predict: one predict_proba per (variant, engine); see the module docstring."""
        answers = live.answer_batch(list(zip(variants, texts, engines)), self._resolve, self._load, self.max_chars)
        errors = {a.error for a in answers}
        if None not in errors and len(errors) == 1:
            raise gr.Error(errors.pop())
        for answer, text in zip(answers, texts):
            if answer.error is None:
                self.timings.put(live.Timings.key(answer.key, text), answer)
        return [[a.probs if a.error is None else a.error for a in answers]]

    def answered(self, variant_id: str | None, text: str, engine: str | None) -> str:
        _, key = self.cache.resolve(variant_id, engine)
        return answered_by(self.cache, variant_id, engine, self.timings.get(live.Timings.key(key, text)))

    def explain(self, variant_id: str | None, text: str | None, engine: str | None,
                method: str | None = live.OCCLUSION) -> tuple[list, str]:
        """/explain: highlighted words and a line saying which model explained which label."""
        check(text, self.max_chars)
        method = method or live.OCCLUSION
        if method not in (live.OCCLUSION, live.IG):
            raise gr.Error(f"Unknown explanation method; pick {live.OCCLUSION} or {live.IG}.")
        record, predictor = self.cache.get(variant_id, engine)
        twin = None
        if method == live.IG:
            twin = predictor if getattr(predictor, "model", None) is not None else \
                self.cache.get(record.id, TORCH_MODEL)[1]
        try:
            result = live.explain(predictor, text, method, twin)
        except live.Refused as exc:
            raise gr.Error(str(exc)) from None
        except UserError as exc:     # e.g. a slow tokenizer has no offsets to map tokens to words
            log.warning("demo: integrated gradients unavailable for %s: %s", record.id, exc)
            raise gr.Error("Integrated gradients cannot run on this variant (the server log says why): "
                           "pick occlusion.") from None
        by = (f"occlusion on engine `{predictor.engine}`" if method == live.OCCLUSION
              else f"integrated gradients on the torch model of **{record.name}**")
        note = (f"Why **{result.label}**: {by}. Red words raise its probability, purple ones lower it "
                "(scaled to [-1, 1]: the strongest word is 1).")
        if result.cut:
            note += f" The text is longer than the model reads: only its first {len(result.words)} words are explained."
        return result.highlighted(), note

    def reexplain(self, variant_id: str | None, text: str | None, engine: str | None, method: str | None) -> Any:
        """A method change explains the text again, or does nothing while the text box is empty."""
        if live.text_problem(text, self.max_chars):
            return gr.skip(), gr.skip()
        return self.explain(variant_id, text, engine, method)

    def guard(self, text: str | None) -> tuple[str, dict]:
        """/guard: Markdown flags with reasons, and the report (PII masked)."""
        check(text, self.max_chars)
        try:
            report = live.guard_report(text)
        except UserError as exc:
            log.warning("demo: the safety guard is unavailable: %s", exc)
            raise gr.Error("The safety guard is not available on this server (the server log says why).") from None
        return guard_markdown(report), report

    def perturb(self, variant_id: str | None, text: str | None, engine: str | None) -> tuple[Any, str]:
        """/perturb: the seeded perturbations, their predictions and flips (one batched call)."""
        check(text, self.max_chars)
        _, predictor = self.cache.get(variant_id, engine)
        played = live.perturbation_table(predictor, text)
        import pandas as pd

        return pd.DataFrame(played.rows, columns=TABLE_HEADERS), played.summary()


def guard_markdown(report: dict) -> str:
    """The guard's verdict for a stakeholder: flagged or not, why, and the text as shown (PII masked)."""
    if not report["flagged"]:
        head = f"**Not flagged.** Toxicity {report['toxicity']:.2f}; no e-mail, phone, card or IBAN found."
    else:
        head = "**Flagged:** " + "; ".join(report["reasons"]) + f". (Toxicity {report['toxicity']:.2f}.)"
    shown = report["shown_text"].replace("`", "'")
    return f"{head}\n\nThe text as the demo would show it:\n\n```\n{shown[:2000]}\n```"


# -- layout and wiring -----------------------------------------------------------------------------
def _inputs(ctx: Any, choices: list[tuple[str, str]]) -> dict[str, Any]:
    """The left column: variant, engine, text, buttons, examples."""
    store, config = ctx.store, ctx.config
    first = default_variant(store, choices, config.default_variant)
    variant = gr.Dropdown(choices=choices, value=first, label="Variant", allow_custom_value=True,
                          info="Any variant in the store; new ones appear after Refresh.")
    engine = gr.Dropdown(choices=engine_choices(store, first), value=default_engine(store, first),
                         label="Engine", allow_custom_value=True,
                         info="The variant's torch model or one of its built engines.")
    text = gr.Textbox(label="Text", lines=4, max_lines=12,
                      info=f"At most {config.max_text_chars:,} characters.",
                      placeholder="e.g. The striker scored twice in the second half …")
    with gr.Row():
        clear = gr.ClearButton(value="Clear")
        submit = gr.Button("Submit", variant="primary")
    samples = example_samples(store, first, config.max_text_chars)
    examples = gr.Dataset(components=[text], samples=samples, label="Examples", samples_per_page=10)
    return {"variant": variant, "engine": engine, "text": text, "clear": clear, "submit": submit,
            "examples": examples}


def _panels() -> dict[str, Any]:
    """Below the answer, full width: the explanation, the safety guard and the robustness playground."""
    with gr.Accordion("Explanation: which words drove the prediction", open=True):
        method = gr.Radio(METHODS, value=live.OCCLUSION, label="Method")
        highlight = gr.HighlightedText(label="Word attributions", combine_adjacent=False, show_legend=False)
        explained = gr.Markdown()
    with gr.Accordion("Safety guard: toxicity and personal data in the input", open=False):
        flags = gr.Markdown()
        with gr.Accordion("Guard report (JSON, PII masked)", open=False):
            report = gr.JSON(show_label=False)
    with gr.Accordion("Robustness playground: does the prediction survive small edits?", open=False):
        summary = gr.Markdown()
        table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True,
                             column_widths=["14%", "56%", "12%", "11%", "7%"])
    return {"method": method, "highlight": highlight, "explained": explained, "flags": flags, "report": report,
            "summary": summary, "table": table}


def _wire(ctx: Any, h: Handlers, i: dict[str, Any], o: dict[str, Any]) -> None:
    """Submit: check (unbatched) -> batched /predict -> answered-by, explanation, guard, playground."""
    store, config = ctx.store, ctx.config
    model = [i["variant"], i["text"], i["engine"]]
    stale = [o[k] for k in ("label", "info", "highlight", "explained", "flags", "report", "summary", "table")]
    blank = lambda: (None, "", None, "", "", None, "", None)   # noqa: E731
    checked = gr.on([i["submit"].click, i["text"].submit], h.check, inputs=model, api_visibility="private")
    # one batch at a time: concurrent requests queue and are answered together, max_batch_size at once
    answer = checked.success(h.predict, inputs=model, outputs=o["label"], api_name="predict", batch=True,
                             max_batch_size=config.max_batch_size, concurrency_limit=1)
    shown = answer.success(h.answered, inputs=model, outputs=o["info"], api_visibility="private")
    answer.failure(lambda: "", outputs=o["info"], api_visibility="private")   # no stale engine line
    checked.failure(blank, outputs=stale, api_visibility="private")  # no stale answer under a refused text
    explained = shown.then(h.explain, inputs=[*model, o["method"]], outputs=[o["highlight"], o["explained"]],
                           api_name="explain")
    guarded = explained.then(h.guard, inputs=i["text"], outputs=[o["flags"], o["report"]], api_name="guard")
    guarded.then(h.perturb, inputs=model, outputs=[o["table"], o["summary"]], api_name="perturb")
    o["method"].change(h.reexplain, inputs=[*model, o["method"]], outputs=[o["highlight"], o["explained"]],
                       api_visibility="private")
    i["examples"].click(lambda sample: sample[0], inputs=i["examples"], outputs=i["text"],
                        api_visibility="private")
    i["clear"].add([i["text"], *stale])
    i["variant"].change(blank, outputs=stale, api_visibility="private")
    i["variant"].change(lambda v: refresh_engines(store, v), inputs=i["variant"], outputs=i["engine"],
                        api_visibility="private")
    i["variant"].change(lambda v: examples_update(store, v, config.max_text_chars), inputs=i["variant"],
                        outputs=i["examples"], api_visibility="private")
    i["engine"].change(blank, outputs=stale, api_visibility="private")


def build_demo_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire its events (``/predict``, ``/explain``, ``/guard``, ``/perturb``)."""
    store, config = ctx.store, ctx.config
    choices = variant_choices(store)
    gr.Markdown("## Try a model\nPick a variant, type a text, and see the probability of every label, "
                "which words drove it, what the safety guard flags and whether small edits change it.")
    notice = gr.Markdown(NO_VARIANTS, visible=not choices)
    with gr.Row():
        with gr.Column(scale=3):
            i = _inputs(ctx, choices)
        with gr.Column(scale=2):
            o = {"label": gr.Label(label="Probabilities"), "info": gr.Markdown()}
    o.update(_panels())
    h = Handlers(ctx)
    _wire(ctx, h, i, o)

    def reload(current: str | None) -> tuple:
        choices, value = pick_variant(store, current, config.default_variant)
        return (variants_notice(store), gr.Dropdown(choices=choices, value=value),
                examples_update(store, value, config.max_text_chars))

    return {"variant": i["variant"], "engine": i["engine"], "text": i["text"], "submit": i["submit"],
            "label": o["label"], "info": o["info"], "notice": notice, "examples": i["examples"],
            "reload": [(reload, i["variant"], [notice, i["variant"], i["examples"]])]}
