"""Words: the unit every explanation is reported, perturbed and scored in.

Hand-written. A text is split on whitespace and re-joined with single spaces, so a word is
an index into that list on every backend: occlusion and KernelSHAP remove words from the
text, gradient methods sum their token attributions back onto words through the fast
tokenizer's character offsets. A text longer than the model's window is cut to the whole
words the model reads, so every method explains the same input the predictor sees.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from evaluators.window import visible_texts


def join_kept(words: Sequence[str], keep: Sequence[bool]) -> str:
    """The text made of the words whose `keep` flag is set, in their original order."""
    return " ".join(word for word, flag in zip(words, keep) if flag)


def word_starts(words: Sequence[str]) -> np.ndarray:
    """Character offset of every word in ``" ".join(words)``."""
    lengths = np.array([len(w) + 1 for w in words], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(words) else lengths


def fit_words(texts: Sequence[str], tokenizer: Any = None, max_length: int | None = None) -> list[list[str]]:
    """Whitespace words of each text, cut to the whole words that fit the model's window
    (:func:`evaluators.window.visible_texts` of the single-spaced text)."""
    joined = [" ".join(text.split()) for text in texts]
    return [text.split() for text in visible_texts(joined, tokenizer, max_length)]


def token_word_ids(offsets: Sequence[Sequence[int]], special: Sequence[int], words: Sequence[str]) -> np.ndarray:
    """Word index of every token (-1 for special, padding and empty tokens).

    A token belongs to the word holding its last character, so tokenizers that fold the
    leading space into a token (SentencePiece's "▁word") map to the right word too.
    """
    starts = word_starts(words)
    ids = np.full(len(offsets), -1, dtype=np.int64)
    for i, ((start, end), flag) in enumerate(zip(offsets, special)):
        if not flag and end > start and len(words):
            ids[i] = int(np.searchsorted(starts, end - 1, side="right")) - 1
    return ids


def to_words(token_attr: np.ndarray, token_words: np.ndarray, n_words: int) -> np.ndarray:
    """Sum token attributions onto words (sums keep IG's completeness intact)."""
    valid = token_words >= 0
    return np.bincount(token_words[valid], weights=token_attr[valid], minlength=n_words).astype(np.float64)
