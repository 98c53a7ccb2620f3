"""Chat formatting for instruction-tuned causal LMs: the tokenizer's own chat template, always.

A prompt is either plain text (one user turn) or a list of ``{"role", "content"}`` messages
ending with a user turn; :func:`render_prompt` gives the text the model continues from.
"""

from __future__ import annotations

from typing import Any

Messages = list[dict[str, str]]


def as_messages(prompt: str | Messages, system: str | None = None) -> Messages:
    """``prompt`` as chat messages (a string is one user turn); ``system`` goes first when given."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
    if system and not (messages and messages[0].get("role") == "system"):
        messages.insert(0, {"role": "system", "content": system})
    return messages


def render_prompt(tokenizer: Any, prompt: str | Messages, system: str | None = None) -> str:
    """The text the model continues: the chat template with the generation prompt added, or the
    prompt itself for a tokenizer without a chat template (a base LM)."""
    if not getattr(tokenizer, "chat_template", None):
        return prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt) + "\n"
    return tokenizer.apply_chat_template(as_messages(prompt, system), add_generation_prompt=True, tokenize=False)
