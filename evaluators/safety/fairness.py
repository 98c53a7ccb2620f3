"""Counterfactual fairness of a classifier: does swapping an identity term change its answer?

For every counterfactual (``counterfactuals.py``) of an evaluation text: a *flip* is a
change of the predicted class, and ``|Δp|`` the absolute change in the probability of the
class predicted for the original text. Both are averaged overall, per axis and per target
group (the group the text was swapped into). Hand-written: these are a few array means,
and no packaged metric takes counterfactual pairs. The overall flip rate gets a percentile
bootstrap CI that resamples *texts* (a text's counterfactuals are not independent draws).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from evaluators.safety.counterfactuals import Counterfactual


@dataclass(frozen=True)
class FairnessScore:
    """Aggregate flip rate and mean |Δp| of one slice of counterfactuals."""

    name: str          # "" overall, "<axis>" or "<axis>/<group>"
    n: int
    flip_rate: float
    mean_dp: float


def score_pairs(original: np.ndarray, counterfactual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flipped, |Δp|) per row of two aligned [n, k] probability arrays."""
    original = np.asarray(original, dtype=np.float64)
    counterfactual = np.asarray(counterfactual, dtype=np.float64)
    if original.shape != counterfactual.shape or original.ndim != 2:
        raise ValueError(f"probability arrays must both be [n, k], got {original.shape} and {counterfactual.shape}")
    predicted = original.argmax(axis=1)
    flipped = counterfactual.argmax(axis=1) != predicted
    rows = np.arange(len(original))
    dp = np.abs(counterfactual[rows, predicted] - original[rows, predicted])
    return flipped, dp


def slice_scores(cfs: Sequence[Counterfactual], flipped: np.ndarray, dp: np.ndarray) -> list[FairnessScore]:
    """Overall, then per axis, then per (axis, target group), in first-seen order."""
    slices: dict[str, list[int]] = {"": list(range(len(cfs)))}
    for i, cf in enumerate(cfs):
        slices.setdefault(cf.axis, []).append(i)
    for i, cf in enumerate(cfs):
        slices.setdefault(f"{cf.axis}/{cf.target}", []).append(i)
    return [FairnessScore(name, len(ix), float(flipped[ix].mean()), float(dp[ix].mean()))
            for name, ix in slices.items() if ix]


def flip_rate_ci(cfs: Sequence[Counterfactual], flipped: np.ndarray, *, bootstrap: int, seed: int,
                 confidence: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the overall flip rate, resampling source texts."""
    if bootstrap <= 0 or not cfs:
        return None, None
    ids = np.array([cf.idx for cf in cfs])
    texts, inverse = np.unique(ids, return_inverse=True)
    flips = np.bincount(inverse, weights=flipped.astype(np.float64), minlength=len(texts))
    counts = np.bincount(inverse, minlength=len(texts)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(texts), size=(bootstrap, len(texts)))
    rates = flips[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(rates, alpha)), float(np.quantile(rates, 1 - alpha))


def flip_records(cfs: Sequence[Counterfactual], flipped: np.ndarray, dp: np.ndarray,
                 original: np.ndarray, counterfactual: np.ndarray, texts: Sequence[str],
                 labels: Sequence[str]) -> list[dict]:
    """One JSON-able row per flipped counterfactual."""
    rows = []
    for i in np.flatnonzero(flipped):
        cf = cfs[i]
        rows.append({
            "idx": cf.idx, "axis": cf.axis, "target": cf.target,
            "original": texts[cf.idx], "counterfactual": cf.text,
            "swaps": [list(pair) for pair in cf.swaps],
            "prediction": labels[int(original[i].argmax())],
            "counterfactual_prediction": labels[int(counterfactual[i].argmax())],
            "dp": round(float(dp[i]), 6),
        })
    return rows
