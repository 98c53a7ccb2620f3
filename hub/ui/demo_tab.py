"""The Demo tab: pick a variant and an engine, type a text, see the probability of every label.

Predictors load lazily, on the first request for a (variant, engine), into a bounded LRU
cache keyed on full ids (``hub/ui/predictor_cache.py``: every spelling of an engine shares
one entry, and loads at once are capped); building the app loads no model. The engine list
offers the eager torch model and every engine built from the variant; it starts on the
newest engine that passed parity, so the demo answers from what would be served.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.ui.predictor_cache import TORCH_MODEL, PredictorCache

DEMO_TASKS = {"text-classification"}

EXAMPLES = [
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


MAX_TEXT_CHARS = 20_000   # a demo text; the model reads max_length tokens of it, the tokenizer all of it


def classify(cache: PredictorCache, variant_id: str | None, text: str | None,
             engine: str | None = None) -> dict[str, float]:
    """Probability of every label for one text."""
    if not text or not text.strip():
        raise gr.Error("The text box is empty: type or paste a sentence to classify, or click an example.")
    if len(text) > MAX_TEXT_CHARS:   # the app is public: one request must not tokenize megabytes
        raise gr.Error(f"The text is {len(text):,} characters; the demo takes at most {MAX_TEXT_CHARS:,}.")
    _, predictor = cache.get(variant_id, engine)
    probs = predictor.predict_proba([text])[0]
    return {label: float(p) for label, p in zip(predictor.labels, probs)}


def answered_by(cache: PredictorCache, variant_id: str | None, engine: str | None = None) -> str:
    """The line under an answer; it never loads a model (the answer's own request did)."""
    record, key = cache.resolve(variant_id, engine)
    predictor = cache.peek(key)
    served = predictor.engine if predictor is not None else key[1]
    return f"Answered by **{record.name}** (`{record.id}`) on engine `{served}`."


def variant_choices(store: Any) -> list[tuple[str, str]]:
    """(label, value) pairs for the dropdown: "name (id)" -> id, newest first."""
    variants = [v for v in store.list_variants() if v.task in DEMO_TASKS]
    return [(f"{v.name} ({v.id})", v.id) for v in reversed(variants)]


def default_variant(store: Any, choices: list[tuple[str, str]]) -> str | None:
    """The leaderboard's best variant when it can be demoed, else the newest one."""
    ids = [value for _, value in choices]
    best = [row["variant"] for row in store.leaderboard() if row["variant"] in ids]
    return (best or ids or [None])[0]


def refresh_variants(store: Any, current: str | None) -> gr.Dropdown:
    """Re-read the store's variants, keeping the selection when it still exists."""
    choices = variant_choices(store)
    ids = [value for _, value in choices]
    value = current if current in ids else default_variant(store, choices)
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


def build_demo_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire its events (the ``/predict`` endpoint among them)."""
    store, cache = ctx.store, ctx.cache
    choices = variant_choices(store)
    gr.Markdown("## Try a model\nPick a variant, type a news sentence, and see the probability of every label.")
    notice = gr.Markdown(NO_VARIANTS, visible=not choices)
    with gr.Row():
        with gr.Column(scale=3):
            first = default_variant(store, choices)
            variant = gr.Dropdown(choices=choices, value=first, label="Variant",
                                  allow_custom_value=True,
                                  info="Any variant in the store; new ones appear after Refresh.")
            engine = gr.Dropdown(choices=engine_choices(store, first), value=default_engine(store, first),
                                 label="Engine", allow_custom_value=True,
                                 info="The variant's torch model or one of its built engines.")
            text = gr.Textbox(label="Text", lines=4, max_lines=12,
                              placeholder="e.g. The striker scored twice in the second half …")
            with gr.Row():
                clear = gr.ClearButton(value="Clear")
                submit = gr.Button("Submit", variant="primary")
            gr.Examples(examples=[[t] for t in EXAMPLES], inputs=[text], label="Examples")
        with gr.Column(scale=2):
            label = gr.Label(label="Probabilities")
            info = gr.Markdown()
    clear.add([text, label, info])

    def predict(variant_id: str | None, text: str | None, engine: str | None = None) -> dict[str, float]:
        return classify(cache, variant_id, text, engine)

    answer = gr.on([submit.click, text.submit], predict, inputs=[variant, text, engine], outputs=label,
                   api_name="predict")
    answer.success(lambda v, e: answered_by(cache, v, e), inputs=[variant, engine], outputs=info,
                   api_visibility="private")
    answer.failure(lambda: "", outputs=info, api_visibility="private")  # no stale engine line
    variant.change(lambda: (None, ""), outputs=[label, info], api_visibility="private")
    variant.change(lambda v: refresh_engines(store, v), inputs=variant, outputs=engine, api_visibility="private")
    engine.change(lambda: (None, ""), outputs=[label, info], api_visibility="private")

    def reload(current: str | None) -> tuple:
        return variants_notice(store), refresh_variants(store, current)

    return {"variant": variant, "engine": engine, "text": text, "submit": submit, "label": label, "info": info,
            "notice": notice, "reload": [(reload, variant, [notice, variant])]}
