"""The user's words in a generation prompt: what the generation scorecards edit and explain.

A generation prompt is a string or a list of chat messages (``{"role", "content"}``) ending
with the user's turn. The robustness, fairness and explanation evaluators of generation work on
the last user turn only: that is what the person typed, while the system prompt and earlier
turns are context the evaluators leave as they are. Hand-written: two small functions.
"""

from __future__ import annotations

from typing import Any

from hub.errors import UserError


def _last_user(prompt: list) -> int:
    for i in range(len(prompt) - 1, -1, -1):
        turn = prompt[i]
        if isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
            return i
    raise UserError("a chat prompt has no user turn with text content to score")


def user_text(prompt: Any) -> str:
    """The text of ``prompt`` (a string) or of its last user turn (a list of messages)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return prompt[_last_user(prompt)]["content"]
    raise UserError(f"a prompt is text or a list of chat messages, not {type(prompt).__name__}")


def conversation_text(prompt: Any) -> str:
    """All the text of ``prompt``: the string, or every turn's text content, one turn per line
    (what scanning a chat prompt for toxicity or PII reads)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return "\n".join(t["content"] for t in prompt if isinstance(t, dict) and isinstance(t.get("content"), str))
    raise UserError(f"a prompt is text or a list of chat messages, not {type(prompt).__name__}")


def with_user_text(prompt: Any, text: str) -> Any:
    """A copy of ``prompt`` whose text (or last user turn's content) is ``text``; the rest as it was."""
    if isinstance(prompt, str):
        return text
    i = _last_user(prompt) if isinstance(prompt, list) else None
    if i is None:
        raise UserError(f"a prompt is text or a list of chat messages, not {type(prompt).__name__}")
    return [*prompt[:i], {**prompt[i], "content": text}, *prompt[i + 1:]]
