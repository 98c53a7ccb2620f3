"""A paired comparison of two scored runs on the same examples: who is right where, and is it chance.

Given the stored per-example predictions of two runs (rows of the ``predictions`` table:
``idx``, ``text``, ``label``, ``prediction``, ``probabilities``), :func:`paired_comparison`
aligns them by ``idx`` and returns both accuracies, their difference B − A with a paired
bootstrap confidence interval, McNemar's exact test, the 2×2 correctness counts and the
examples on which the two predictions differ.

Hand-written here: the alignment checks, the counts, and the paired bootstrap (numpy, seeded:
each resample draws example indices once and applies them to both runs, so the interval is
of the *paired* difference, narrower than two independent intervals). From scipy: the exact
binomial test (:func:`scipy.stats.binomtest`) on the discordant pairs, which is McNemar's
exact test. Pure logic: no store, no I/O; the CLI (``evalhub compare``) reads the rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

CONFIDENCE = 0.95
CHUNK = 256            # resamples drawn at once: bounds memory at CHUNK × n indices


class PairingError(ValueError):
    """The two prediction lists are not of the same examples with the same gold labels."""


@dataclass
class PairedComparison:
    n: int
    accuracy_a: float
    accuracy_b: float
    difference: float                          # accuracy B − accuracy A
    ci_low: float | None                       # paired bootstrap interval of ``difference``
    ci_high: float | None
    confidence: float
    resamples: int
    seed: int
    mcnemar_p: float                           # exact two-sided; 1.0 without discordant pairs
    both_right: int
    only_a_right: int
    only_b_right: int
    both_wrong: int
    disagreements: list[dict] = field(default_factory=list)   # idx, text, label, a_prediction, b_prediction

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _by_idx(rows: Sequence[dict], which: str) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for row in rows:
        if row["idx"] in out:
            raise PairingError(f"{which} has example {row['idx']} twice")
        out[row["idx"]] = row
    return out


def align(a_preds: Sequence[dict], b_preds: Sequence[dict]) -> list[tuple[dict, dict]]:
    """(A row, B row) per example in idx order; PairingError unless both cover the same labelled examples."""
    a, b = _by_idx(a_preds, "A"), _by_idx(b_preds, "B")
    if not a:
        raise PairingError("A has no predictions")
    if a.keys() != b.keys():
        only_a, only_b = len(a.keys() - b.keys()), len(b.keys() - a.keys())
        raise PairingError(f"the runs scored different examples ({only_a} only in A, {only_b} only in B)")
    pairs = [(a[i], b[i]) for i in sorted(a)]
    for ra, rb in pairs:
        if ra.get("label") is None or rb.get("label") is None:
            raise PairingError(f"example {ra['idx']} has no gold label; accuracy needs labelled data")
        if ra["label"] != rb["label"]:
            raise PairingError(f"example {ra['idx']} has gold label {ra['label']!r} in A but {rb['label']!r} in B")
    return pairs


def paired_bootstrap(a_right: np.ndarray, b_right: np.ndarray, *, seed: int = 0, resamples: int = 2000,
                     confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile interval of mean(b_right) − mean(a_right), resampling examples (the same draw for both)."""
    diff = b_right.astype(np.float64) - a_right.astype(np.float64)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, CHUNK):
        draw = rng.integers(0, len(diff), size=(min(CHUNK, resamples - start), len(diff)))
        means.append(diff[draw].mean(axis=1))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.concatenate(means), [tail, 100 - tail])
    return float(low), float(high)


def mcnemar_exact(only_a_right: int, only_b_right: int) -> float:
    """McNemar's exact test: two-sided binomial test of the discordant pairs against p = 1/2."""
    from scipy.stats import binomtest

    discordant = only_a_right + only_b_right
    if discordant == 0:
        return 1.0
    return float(binomtest(only_b_right, discordant, 0.5, alternative="two-sided").pvalue)


def paired_comparison(a_preds: Sequence[dict], b_preds: Sequence[dict], seed: int = 0,
                      resamples: int = 2000) -> PairedComparison:
    """Compare run B with run A on the same examples (see the module docstring).

    ``resamples=0`` skips the bootstrap (``ci_low``/``ci_high`` are None). Raises
    :class:`PairingError` (a ValueError) when the two lists are not of the same examples.
    """
    if resamples < 0:
        raise ValueError(f"resamples must be >= 0, got {resamples}")
    pairs = align(a_preds, b_preds)
    a_right = np.array([ra["prediction"] == ra["label"] for ra, _ in pairs])
    b_right = np.array([rb["prediction"] == rb["label"] for _, rb in pairs])
    only_a = int(np.sum(a_right & ~b_right))
    only_b = int(np.sum(~a_right & b_right))
    low, high = paired_bootstrap(a_right, b_right, seed=seed, resamples=resamples) if resamples else (None, None)
    return PairedComparison(
        n=len(pairs), accuracy_a=float(a_right.mean()), accuracy_b=float(b_right.mean()),
        difference=float(b_right.mean() - a_right.mean()), ci_low=low, ci_high=high, confidence=CONFIDENCE,
        resamples=resamples, seed=seed, mcnemar_p=mcnemar_exact(only_a, only_b),
        both_right=int(np.sum(a_right & b_right)), only_a_right=only_a, only_b_right=only_b,
        both_wrong=int(np.sum(~a_right & ~b_right)),
        disagreements=[{"idx": ra["idx"], "text": ra["text"], "label": ra["label"],
                        "a_prediction": ra["prediction"], "b_prediction": rb["prediction"]}
                       for ra, rb in pairs if ra["prediction"] != rb["prediction"]])
