"""The Model card tab: a variant's model card, rendered and as the README.md ``evalhub push`` writes.

The card is built from the store by :func:`hub.card.build_card` (no model loads, no network).
API endpoint: ``/card`` (variant) -> the card's Markdown text. An unknown variant, or one the
app config hides, is one short ``gr.Error`` naming only the value given.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from hub.card import build_card
from hub.errors import UserError, quote

HEADER = """\
## Model card
The README.md a push to the Hugging Face Hub writes for a variant: its lineage, training setup,
every scorecard (torch and each engine), its limitations and how to use it.
"""
NO_VARIANTS = "**No variants yet.** Run `evalhub demo` to train one, then reload this page."


def variant_choices(store: Any) -> list[tuple[str, str]]:
    """(label, value) pairs, "name (id)" -> id, newest first."""
    return [(f"{v.name} ({v.id})", v.id) for v in reversed(store.list_variants())]


def card_text(store: Any, variant: str | None) -> str:
    """The card's Markdown (front matter and body); gr.Error for a missing or unknown variant."""
    if not variant:
        raise gr.Error("Pick a variant from the Variant list.")
    shown = {v.id for v in store.list_variants()}
    if str(variant) not in shown:     # exact ids only: a prefix or a name of a hidden variant reveals nothing
        raise gr.Error(f"Unknown variant {quote(variant)} (pick one from the Variant list).")
    try:
        return build_card(store, str(variant)).text
    except UserError:
        raise gr.Error(f"Unknown variant {quote(variant)} (pick one from the Variant list).") from None


CARD_FOLDER = Path(tempfile.gettempdir()) / "evalhub-cards"   # gradio serves files under the temp folder


def _download(variant: str, text: str) -> str:
    """The card as ``<temp>/evalhub-cards/<hash of the variant>/README.md``, written atomically: one file
    per variant however often the store changes, and never a partly written one."""
    folder = CARD_FOLDER / hashlib.sha256(variant.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, suffix=".tmp", delete=False) as fh:
        fh.write(text)
    os.replace(fh.name, folder / "README.md")
    return str(folder / "README.md")


def rendered(text: str) -> str:
    """The card for gr.Markdown: its YAML front matter as a code block (Markdown would read it as text)."""
    if text.startswith("---\n") and text.count("---\n") >= 2:
        _, meta, body = text.split("---\n", 2)
        return f"{body.strip()}\n\n### Metadata (front matter)\n\n```yaml\n{meta.strip()}\n```"
    return text


def card_view(store: Any, variant: str | None) -> tuple:
    """Rendered card, raw README text, and the README.md to download; empty when no variant is picked."""
    if not variant:
        return "", "", None
    text = card_text(store, variant)
    return rendered(text), text, _download(str(variant), text)


def build_card_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire ``/card``."""
    store = ctx.store
    choices = variant_choices(store)
    gr.Markdown(HEADER)
    notice = gr.Markdown(NO_VARIANTS, visible=not choices)
    with gr.Row():
        variant = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Variant",
                              allow_custom_value=True, scale=4)
        show = gr.Button("Show card", variant="primary", scale=1)
    with gr.Tab("Rendered"):
        shown = gr.Markdown()
    with gr.Tab("README.md"):
        raw = gr.Code(language="markdown", label="README.md", interactive=False)
        download = gr.DownloadButton("Download README.md", value=None)
    show.click(lambda v: card_text(store, v), inputs=variant, outputs=raw, api_name="card").success(
        lambda v: card_view(store, v), inputs=variant, outputs=[shown, raw, download], api_visibility="private")
    variant.change(lambda v: card_view(store, v), inputs=variant, outputs=[shown, raw, download],
                   api_visibility="private")

    def reload(current: str | None) -> tuple:
        fresh = variant_choices(store)
        ids = [value for _, value in fresh]
        value = current if current in ids else (ids[0] if ids else None)
        return gr.Markdown(visible=not fresh), gr.Dropdown(choices=fresh, value=value), *card_view(store, value)

    return {"variant": variant, "show": show, "rendered": shown, "raw": raw, "download": download,
            "notice": notice, "reload": [(reload, variant, [notice, variant, shown, raw, download])]}
