"""Faithfulness of word attributions: do the words an explanation ranks first drive the prediction?

Hand-written, at word level, following the ERASER definitions (DeYoung et al., 2020,
"ERASER: A Benchmark to Evaluate Rationalized NLP Models"), with the rationale r_k taken as
the top ceil(k * n_words) words by signed attribution towards the predicted class j:

* comprehensiveness = p(j | x) - p(j | x without r_k): the drop when the rationale is
  removed (higher is better);
* sufficiency = p(j | x) - p(j | r_k alone): the drop when only the rationale is kept
  (lower is better);

each averaged over the removal fractions k (AOPC, area over the perturbation curve). ERASER's
own bins are {1, 5, 10, 20, 50}% of tokens; on words {10, ..., 50}% is the default here.
Agreement with leave-one-out is Kendall's tau-b (``scipy.stats.kendalltau``) per example.
ferret-xai computes the same scores, but it pins an older transformers, so it is not a
runtime dependency.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy.stats import kendalltau

from evaluators.explain.words import join_kept

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5)


def top_k_mask(attr: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ceil(fraction * n) highest-attributed words (ties: earlier word first)."""
    n = len(attr)
    k = min(n, max(1, math.ceil(fraction * n - 1e-9))) if n else 0
    order = np.argsort(-np.asarray(attr, dtype=np.float64), kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def erasure_texts(words: Sequence[str], attr: np.ndarray, fractions: Sequence[float]) -> tuple[list[str], list[str]]:
    """(texts without the rationale, texts of the rationale alone), one per fraction."""
    removed, kept = [], []
    for fraction in fractions:
        mask = top_k_mask(attr, fraction)
        removed.append(join_kept(words, ~mask))
        kept.append(join_kept(words, mask))
    return removed, kept


def comprehensiveness_sufficiency(predictor: Any, words_list: Sequence[Sequence[str]],
                                  attributions: Sequence[np.ndarray], targets: Sequence[int],
                                  base_probs: np.ndarray,
                                  fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[np.ndarray, np.ndarray]:
    """Per-example AOPC comprehensiveness and sufficiency (NaN for an example without words).

    All erased texts of all examples go to the predictor in one ``predict_proba`` call.
    """
    texts, owners = [], []
    for i, (words, attr) in enumerate(zip(words_list, attributions)):
        if len(words):
            removed, kept = erasure_texts(words, attr, fractions)
            texts += removed + kept
            owners.append(i)
    comp = np.full(len(words_list), np.nan)
    suff = np.full(len(words_list), np.nan)
    if not texts:
        return comp, suff
    probs = np.asarray(predictor.predict_proba(texts), dtype=np.float64)
    m = len(fractions)
    for row, i in enumerate(owners):
        block = probs[row * 2 * m:(row + 1) * 2 * m, targets[i]]
        full = float(base_probs[i, targets[i]])
        comp[i] = float(np.mean(full - block[:m]))
        suff[i] = float(np.mean(full - block[m:]))
    return comp, suff


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b between two attributions of the same words (NaN when undefined)."""
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(kendalltau(a, b).statistic)


def tau_against(reference: Sequence[np.ndarray], attributions: Sequence[np.ndarray]) -> np.ndarray:
    """Per-example Kendall tau of `attributions` against `reference` (leave-one-out)."""
    return np.array([kendall_tau(ref, attr) for ref, attr in zip(reference, attributions)], dtype=np.float64)
