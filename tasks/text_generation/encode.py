"""Conversations as training rows: token ids with the loss on the assistant's tokens only.

:func:`encode_chat` renders a conversation with the tokenizer's own chat template and labels
the tokens of every assistant turn (its content and its end-of-turn token); everything else
(system and user turns, the ``<|im_start|>assistant\\n`` header, the newline after a turn) is
-100. The assistant spans come from rendering prefixes: turn *k* starts where the template
of turns ``< k`` with the generation prompt ends and stops at the end-of-turn token of the
template of turns ``<= k``; tokens map to characters through the fast tokenizer's offsets.
Templates rarely carry ``{% generation %}`` (SmolLM2's does not), so transformers'
``return_assistant_tokens_mask`` cannot be used; this is hand-written, and a template whose
prefixes are not prefixes of the whole is refused.

A conversation over ``max_length`` tokens loses the start of its prompt (the final response
is kept); :func:`make_collator` pads on the right for training, :func:`pack` concatenates
rows into full blocks.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

from hub.errors import UserError

IGNORE = -100
CUT_NOTE = "the response is kept; one longer than half of that loses its end"

__all__ = ["encode_chat", "make_collator", "pack", "assistant_spans", "IGNORE"]


def _render(tokenizer: Any, messages: list[dict], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans [start, end) of its assistant turns
    (content plus end-of-turn token, without the whitespace the template adds after it)."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the tokenizer has no chat template; fine-tune an instruction-tuned model "
                        "(e.g. smollm2) or add a chat_template to its tokenizer_config.json")
    text = _render(tokenizer, messages)
    eot = tokenizer.eos_token or ""
    spans = []
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:k], generation_prompt=True) if k else ""
        upto = _render(tokenizer, messages[:k + 1])
        if not (upto.startswith(before) and text.startswith(upto)):
            raise UserError("the tokenizer's chat template does not render a conversation's turns as "
                            "prefixes of the whole, so the assistant's tokens cannot be found; use another model")
        start, end = len(before), len(upto)
        found = upto.rfind(eot, start) if eot else -1
        end = found + len(eot) if found >= start else len(upto.rstrip())
        spans.append((start, end))
    return text, spans


def encode_chat(tokenizer: Any, messages: list[dict], max_length: int, *,
                on_cut: Callable[[], Any] | None = None) -> dict[str, list[int]]:
    """``input_ids``, ``attention_mask`` and ``labels`` (-100 outside assistant turns) of one
    conversation, at most ``max_length`` tokens: an over-long prompt is cut from the left, with a
    UserWarning (or a call of ``on_cut``, for a caller that reports the cuts of a whole split)."""
    text, spans = assistant_spans(tokenizer, messages)
    # verbose=False: the tokenizer's "longer than the maximum ... indexing errors" notice is moot, the row is cut here
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = list(enc["input_ids"])
    labels = [tok if any(s <= start < e for s, e in spans) and end > start else IGNORE
              for tok, (start, end) in zip(ids, enc["offset_mapping"])]
    if len(ids) > max_length:
        if on_cut is None:
            warnings.warn(f"conversations longer than model.max_length={max_length} tokens are cut from the left "
                          f"of the prompt ({CUT_NOTE}); raise model.max_length to keep them whole",
                          UserWarning, stacklevel=2)
        else:
            on_cut()
        ids, labels = _truncate(ids, labels, spans, enc["offset_mapping"], max_length)
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def _truncate(ids: list[int], labels: list[int], spans: list[tuple[int, int]], offsets: Any,
              max_length: int) -> tuple[list[int], list[int]]:
    """Keep the final response whole and as much of the prompt's end as fits; a response longer
    than the budget keeps the last half of the budget's worth of prompt and its own start."""
    last_start = spans[-1][0] if spans else len(ids)
    boundary = next((i for i, (start, _) in enumerate(offsets) if start >= last_start), len(ids))
    response = len(ids) - boundary
    keep_prompt = min(boundary, max(max_length - response, max_length // 2))
    kept = list(range(boundary - keep_prompt, boundary)) + list(range(boundary, len(ids)))
    kept = kept[:max_length]
    return [ids[i] for i in kept], [labels[i] for i in kept]


def make_collator(tokenizer: Any, pad_to_multiple_of: int | None = None) -> Callable[[list[dict]], dict]:
    """A DataLoader ``collate_fn``: right-padded ``input_ids`` (pad token, eos when none),
    ``attention_mask`` (0 on padding) and ``labels`` (-100 on padding) as int64 tensors."""
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise UserError("the tokenizer has neither a pad nor an eos token; set pad_token in its tokenizer_config.json")

    def collate(rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        if pad_to_multiple_of:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        def padded(key: str, value: int) -> torch.Tensor:
            return torch.tensor([list(r[key]) + [value] * (width - len(r[key])) for r in rows], dtype=torch.long)
        return {"input_ids": padded("input_ids", pad_id), "attention_mask": padded("attention_mask", 0),
                "labels": padded("labels", IGNORE)}

    return collate


def pack(examples: list[dict], max_length: int) -> list[dict]:
    """Concatenate encoded rows in order and cut them into blocks of ``max_length`` tokens (the
    last may be shorter), labels kept; attention spans the whole block, as in transformers'
    ``run_clm`` grouping: a turn may attend to the end of the previous conversation."""
    ids = [t for row in examples for t in row["input_ids"]]
    labels = [t for row in examples for t in row["labels"]]
    return [{"input_ids": ids[i:i + max_length], "attention_mask": [1] * len(ids[i:i + max_length]),
             "labels": labels[i:i + max_length]} for i in range(0, len(ids), max_length)]
