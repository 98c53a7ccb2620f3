"""The part of a text a model reads: texts longer than its window are cut after the last whole word in it.

Evaluators that edit texts (perturbations, attacks, word removal for explanations) work on
this part only: an edit past the truncation point changes nothing the model sees, costs
time, and would be reported as if it had been tested. Hand-written: it needs the fast
tokenizer's character offsets, which no evaluation library maps back to words.
"""

from __future__ import annotations

from typing import Any, Sequence


def visible_texts(texts: Sequence[str], tokenizer: Any = None, max_length: int | None = None) -> list[str]:
    """Each text cut to the whole words inside the model's window (unchanged when it fits); a
    word the window splits is left out, punctuation after the last word read may be.

    A window with no whitespace in it (a long URL, a language written without spaces) is cut
    after its last token instead, so no text comes back empty.

    Without a fast tokenizer or a maximum length the texts are returned whole: the predictor
    then decides what it reads.
    """
    texts = list(texts)
    if not texts or tokenizer is None or not max_length or not getattr(tokenizer, "is_fast", False):
        return texts
    enc = tokenizer(texts, truncation=True, max_length=max_length, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    out = []
    for text, encoding, offsets, special in zip(texts, enc.encodings, enc["offset_mapping"],
                                                 enc["special_tokens_mask"]):
        if not encoding.overflowing:
            out.append(text)
            continue
        covered = max((end for (start, end), flag in zip(offsets, special) if not flag and end > start), default=0)
        if 0 < covered < len(text) and text[covered - 1].isalnum() and text[covered].isalnum():
            # the window splits a word: back to the last whitespace (a word ending at punctuation,
            # "great,", was read whole and stays); a window without any whitespace (a URL,
            # unspaced scripts) ends at its last token
            covered = next((i for i in range(covered - 1, -1, -1) if text[i].isspace()), covered)
        out.append(text[:covered].rstrip())
    return out


def read_by(predictor: Any, texts: Sequence[str]) -> list[str]:
    """:func:`visible_texts` for ``predictor``'s tokenizer and window (texts whole when it has neither)."""
    return visible_texts(texts, getattr(predictor, "tokenizer", None), getattr(predictor, "max_length", None))
