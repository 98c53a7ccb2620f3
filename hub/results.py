"""What a scoring step hands back, shared by evaluators, engine builds and the store.

:class:`MetricResult` is one long-form row of the results database; :class:`EvalOutput`
is what an evaluator (or an engine build's measurement) returns: its metrics, the task's
per-example predictions and free-form records. :func:`bootstrap_mean_ci` is the percentile
bootstrap every task uses for the confidence interval of a mean of per-example scores:
hand-written in numpy, because calling an ``evaluate`` module a thousand times would cost
seconds per run for what is a mean of a vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Bound on the int64 index matrix drawn at once by the bootstrap (~32 MiB): large eval
# sets are resampled in chunks of rows instead of one (bootstrap x n) matrix.
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class MetricResult:
    """One score of a run: the long-form row the results database stores."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    higher_is_better: bool = True


@dataclass
class EvalOutput:
    metrics: list[MetricResult]
    # the task's per-example rows (classification: idx, text, label, prediction, probabilities)
    predictions: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)       # any JSON-able per-example rows


def bootstrap_mean_ci(scores: np.ndarray, n_resamples: int, seed: int, confidence: float) -> tuple[float, float]:
    """Percentile bootstrap CI for the mean of per-example `scores`, resampling examples.

    Deterministic for a given seed and input length; vectorised, in row chunks so memory
    stays bounded on large eval sets.
    """
    rng = np.random.default_rng(seed)
    n = len(scores)
    rows = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.concatenate(
        [
            scores[rng.integers(0, n, size=(min(rows, n_resamples - start), n))].mean(axis=1)
            for start in range(0, n_resamples, rows)
        ]
    )
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2, 1.0 - alpha / 2])
    return float(low), float(high)


def mean_with_ci(name: str, scores: np.ndarray, *, bootstrap: int, seed: int, confidence: float = 0.95,
                 higher_is_better: bool = True) -> MetricResult:
    """The mean of per-example ``scores`` as a metric, with a bootstrap CI when ``bootstrap`` > 0."""
    scores = np.asarray(scores, dtype=np.float64)
    value = float(scores.mean()) if len(scores) else float("nan")
    if bootstrap <= 0 or len(scores) < 2:
        return MetricResult(name, value, higher_is_better=higher_is_better)
    low, high = bootstrap_mean_ci(scores, bootstrap, seed, confidence)
    return MetricResult(name, value, low, high, higher_is_better=higher_is_better)
