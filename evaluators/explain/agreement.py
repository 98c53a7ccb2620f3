"""Explanation parity: does an engine explain its predictions the way the torch model does?

An engine can predict the same labels and still rank words differently (an int8 engine's
probabilities move by small amounts, and leave-one-out attributions are differences of such
probabilities). On a fixed sample of texts, both predictors explain the torch model's predicted
label with leave-one-out occlusion (:func:`evaluators.explain.perturbation.leave_one_out`, one
batched ``predict_proba`` each, so it runs on every backend), and the two attributions of each
text are compared:

- **Kendall τ** (``scipy.stats.kendalltau``, τ-b, ties handled) of the two word rankings;
  a text whose attributions are constant under either predictor has no ranking and is left out
  of the mean (``n_constant`` counts them);
- **top-k overlap**: the share of the reference's k most important words (by |attribution|)
  that are also among the candidate's k, with k = min(``top_k``, number of words).

Hand-written: only the sampling and the aggregation; the attribution and the rank statistic
come from the explain evaluator and scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

TOP_K = 5
SAMPLE = 16     # texts explained per build: a few seconds of MiniLM on two cores, per predictor


def sample_texts(texts: Sequence[str], n: int, seed: int) -> list[str]:
    """A seeded sample of ``n`` non-empty texts (all of them when there are fewer), in split order."""
    usable = [i for i, t in enumerate(texts) if isinstance(t, str) and t.split()]
    if len(usable) > n:
        usable = sorted(np.random.default_rng(seed).choice(usable, size=n, replace=False).tolist())
    return [texts[i] for i in usable]


def occlusion(predictor: Any, words: list[list[str]], targets: Sequence[int]) -> list[np.ndarray]:
    """Leave-one-out attributions of ``targets`` under ``predictor`` (one batched call per step)."""
    from evaluators.explain.perturbation import leave_one_out

    base = np.asarray(predictor.predict_proba([" ".join(w) for w in words]), dtype=np.float64)
    return leave_one_out(predictor, words, targets, base)


def compare(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], top_k: int = TOP_K) -> dict[str, Any]:
    """Mean Kendall τ and top-k overlap of paired attributions (see the module docstring)."""
    from scipy.stats import kendalltau

    taus, overlaps, constant = [], [], 0
    for ref, cand in zip(reference, candidate):
        ref, cand = np.asarray(ref, dtype=np.float64), np.asarray(cand, dtype=np.float64)
        if ref.size == 0:
            continue
        k = min(top_k, ref.size)
        top_ref = set(np.argsort(-np.abs(ref), kind="stable")[:k].tolist())
        top_cand = set(np.argsort(-np.abs(cand), kind="stable")[:k].tolist())
        overlaps.append(len(top_ref & top_cand) / k)
        if ref.size < 2 or np.ptp(ref) == 0 or np.ptp(cand) == 0:
            constant += 1
            continue
        tau = kendalltau(ref, cand).statistic
        if math.isfinite(tau):
            taus.append(float(tau))
    return {"explanation_tau": float(np.mean(taus)) if taus else None,
            "explanation_topk_overlap": float(np.mean(overlaps)) if overlaps else None,
            "explanation_texts": len(overlaps), "explanation_top_k": top_k, "explanation_n_constant": constant}


@dataclass
class ReferenceExplanations:
    """The reference's side, computed once per build and compared with every candidate."""

    words: list[list[str]]          # each sampled text's words, cut to what the model reads
    targets: list[int]              # the reference's predicted label of each
    attributions: list[np.ndarray]  # its leave-one-out attributions of that label


def explain_reference(reference: Any, texts: Sequence[str], *, tokenizer: Any = None, max_length: int | None = None,
                      n: int = SAMPLE, seed: int = 0) -> ReferenceExplanations:
    """Occlusion of the reference's own prediction on a seeded sample of ``n`` of ``texts``."""
    from evaluators.explain.words import fit_words

    words = [w for w in fit_words(sample_texts(texts, n, seed), tokenizer, max_length) if w]
    if not words:
        return ReferenceExplanations([], [], [])
    targets = np.asarray(reference.predict_proba([" ".join(w) for w in words])).argmax(axis=1).tolist()
    return ReferenceExplanations(words, targets, occlusion(reference, words, targets))


def explanation_parity(reference: ReferenceExplanations, candidate: Any, top_k: int = TOP_K) -> dict[str, Any]:
    """How closely ``candidate``'s occlusion attributions follow the reference's (same texts, same labels)."""
    if not reference.words:
        return compare([], [], top_k)
    return compare(reference.attributions, occlusion(candidate, reference.words, reference.targets), top_k)
