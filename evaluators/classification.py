"""The classification scorecard: task metrics, calibration and per-class scores in one call.

Every number comes from the local `evaluate` modules in `evaluators/metrics/` (so the
scorecard and anyone calling `load_metric` agree by construction). The one hand-written
part is the accuracy confidence interval: a percentile bootstrap over examples, done in
numpy because calling an `evaluate` module a thousand times would cost seconds per run
for what is a mean of a 0/1 vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evaluators.metrics import load_metric
from hub.results import MetricResult, bootstrap_mean_ci  # noqa: F401 - re-exported

def classification_metrics(
    references: Sequence[int],
    predictions: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    label_names: list[str],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> list[MetricResult]:
    """Score single-label predictions against references.

    `references` and `predictions` are class ids in [0, len(label_names)); `probabilities`
    is (n_examples, n_classes). Returns accuracy (with a `confidence` percentile bootstrap
    CI from `bootstrap` resamples seeded by `seed`; `bootstrap=0` gives no CI), f1_macro,
    f1_micro, precision_macro, recall_macro, mcc, ece and brier (both lower-is-better),
    then `f1/<label>`, `precision/<label>`, `recall/<label>` for every label. All classes
    count in the macro averages even when absent from the data; an undefined ratio is 0.
    """
    refs, preds, probs = _check_inputs(references, predictions, probabilities, label_names)
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    labels = list(range(len(label_names)))
    pair = {"references": refs, "predictions": preds}
    results = [_accuracy(refs, preds, bootstrap, seed, confidence)]
    for name, average in (("f1", "macro"), ("f1", "micro"), ("precision", "macro"), ("recall", "macro")):
        value = load_metric(name).compute(**pair, average=average, labels=labels)[name]
        results.append(MetricResult(f"{name}_{average}", value))
    mcc = load_metric("matthews_correlation").compute(**pair)["matthews_correlation"]
    results.append(MetricResult("mcc", mcc))
    results += _calibration(refs, probs)
    results += _per_class(refs, preds, labels, label_names)
    return results


def _check_inputs(references, predictions, probabilities, label_names):
    n_classes = len(label_names)
    refs = np.asarray(references, dtype=np.int64).reshape(-1)
    preds = np.asarray(predictions, dtype=np.int64).reshape(-1)
    probs = np.asarray(probabilities, dtype=np.float64)
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names must be distinct, got {label_names}")
    if len(refs) == 0:
        raise ValueError("no examples to score")
    if len(preds) != len(refs) or len(probs) != len(refs):
        raise ValueError(
            f"length mismatch: {len(refs)} references, {len(preds)} predictions, {len(probs)} probabilities"
        )
    if probs.ndim != 2 or probs.shape[1] != n_classes:
        raise ValueError(f"probabilities must have shape (n, {n_classes}), got {probs.shape}")
    for what, ids in (("references", refs), ("predictions", preds)):
        if ids.min() < 0 or ids.max() >= n_classes:
            raise ValueError(f"{what} must be class ids in [0, {n_classes})")
    return refs, preds, probs


def _accuracy(refs, preds, bootstrap, seed, confidence) -> MetricResult:
    value = load_metric("accuracy").compute(references=refs, predictions=preds)["accuracy"]
    if bootstrap == 0:
        return MetricResult("accuracy", value)
    low, high = bootstrap_mean_ci((refs == preds).astype(np.float64), bootstrap, seed, confidence)
    return MetricResult("accuracy", value, low, high)


def _calibration(refs, probs) -> list[MetricResult]:
    inputs = {"references": refs, "prediction_probabilities": probs}
    ece = load_metric("expected_calibration_error").compute(**inputs)["expected_calibration_error"]
    brier = load_metric("brier_score").compute(**inputs)["brier_score"]
    return [MetricResult("ece", ece, higher_is_better=False), MetricResult("brier", brier, higher_is_better=False)]


def _per_class(refs, preds, labels, label_names) -> list[MetricResult]:
    report = load_metric("classification_report").compute(
        references=refs, predictions=preds, labels=labels, target_names=list(label_names)
    )
    return [
        MetricResult(f"{stat}/{label}", report[f"{stat}/{label}"])
        for stat in ("f1", "precision", "recall")
        for label in label_names
    ]
