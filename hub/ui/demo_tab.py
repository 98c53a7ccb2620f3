"""The Demo tab: pick a variant, type a text, see the probability of every label.

Predictors load lazily, on the first request for a variant, and stay cached per
variant id for the life of the app; building the app loads no model.
"""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr

from hub.errors import UserError

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


class PredictorCache:
    """Variant id -> loaded predictor, filled on first use; safe across gradio's worker threads."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._predictors: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, variant_ref: str | None) -> tuple[Any, Any]:
        """(record, predictor) of a variant; gr.Error when it is missing, unknown or unloadable."""
        if not variant_ref:
            if not self.store.list_variants():
                raise gr.Error("The store has no variants yet: run `evalhub demo` first, then reload this page.")
            raise gr.Error("No variant is selected: pick one from the Variant list.")
        try:
            record = self.store.get_variant(str(variant_ref))
        except UserError as exc:
            raise gr.Error(f"Unknown variant: {exc}.") from None
        with self._lock:  # one load per variant, even when two requests arrive together
            if record.id not in self._predictors:
                from hub.registries import TASKS

                try:
                    self._predictors[record.id] = TASKS.get(record.task).load_predictor(self.store, record)
                except UserError as exc:
                    raise gr.Error(str(exc)) from None
        return record, self._predictors[record.id]


def classify(cache: PredictorCache, variant_id: str | None, text: str | None) -> dict[str, float]:
    """Probability of every label for one text."""
    if not text or not text.strip():
        raise gr.Error("The text box is empty: type or paste a sentence to classify, or click an example.")
    _, predictor = cache.get(variant_id)
    probs = predictor.predict_proba([text])[0]
    return {label: float(p) for label, p in zip(predictor.labels, probs)}


def answered_by(cache: PredictorCache, variant_id: str | None) -> str:
    record, predictor = cache.get(variant_id)
    return f"Answered by **{record.name}** (`{record.id}`) on engine `{predictor.engine}`."


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


def variants_notice(store: Any) -> gr.Markdown:
    return gr.Markdown(visible=not variant_choices(store))


def build_demo_tab(store: Any) -> dict[str, Any]:
    """The tab's components by role; the caller wires the events."""
    choices = variant_choices(store)
    gr.Markdown("## Try a model\nPick a variant, type a news sentence, and see the probability of every label.")
    notice = gr.Markdown(NO_VARIANTS, visible=not choices)
    with gr.Row():
        with gr.Column(scale=3):
            variant = gr.Dropdown(choices=choices, value=default_variant(store, choices), label="Variant",
                                  allow_custom_value=True,
                                  info="Any variant in the store; new ones appear after Refresh.")
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
    return {"variant": variant, "text": text, "submit": submit, "label": label, "info": info,
            "notice": notice}
