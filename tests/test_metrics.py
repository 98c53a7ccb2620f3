"""The local evaluate metric modules and the classification scorecard, checked against sklearn."""

from __future__ import annotations

import doctest
import socket
import warnings

import numpy as np
import pytest
import sklearn
import sklearn.metrics as skm

from evaluators.classification import MetricResult, bootstrap_mean_ci, classification_metrics
from evaluators.metrics import available_metrics, clear_cache, load_metric
from hub.errors import UserError

N_CLASSES = 5
LABELS = list(range(N_CLASSES))
NAMES = ["business", "entertainment", "politics", "sport", "tech"]


def make_data(seed: int, n: int = 200, k: int = N_CLASSES):
    """References, predictions right ~60% of the time, and probabilities whose argmax is the prediction."""
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, k, n)
    preds = np.where(rng.random(n) < 0.6, refs, rng.integers(0, k, n))
    probs = rng.dirichlet(np.ones(k), n)
    # swap each row's max into the predicted column so argmax(probs) == preds
    top = probs.argmax(axis=1)
    rows = np.arange(n)
    probs[rows, top], probs[rows, preds] = probs[rows, preds], probs[rows, top].copy()
    return refs, preds, probs


@pytest.fixture(params=[0, 1, 2], ids=lambda s: f"seed{s}")
def data(request):
    return make_data(request.param)


def test_available_metrics():
    assert available_metrics() == sorted(
        [
            "accuracy",
            "bleu",
            "chrf",
            "exact_match",
            "rouge",
            "brier_score",
            "classification_report",
            "expected_calibration_error",
            "f1",
            "matthews_correlation",
            "precision",
            "recall",
        ]
    )


def test_accuracy_and_mcc_match_sklearn(data):
    refs, preds, _ = data
    acc = load_metric("accuracy").compute(references=refs, predictions=preds)["accuracy"]
    assert acc == pytest.approx(skm.accuracy_score(refs, preds))
    mcc = load_metric("matthews_correlation").compute(references=refs, predictions=preds)
    assert mcc["matthews_correlation"] == pytest.approx(skm.matthews_corrcoef(refs, preds))


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
@pytest.mark.parametrize(
    "name, sk_fn", [("f1", skm.f1_score), ("precision", skm.precision_score), ("recall", skm.recall_score)]
)
def test_averaged_scores_match_sklearn(data, name, sk_fn, average):
    refs, preds, _ = data
    ours = load_metric(name).compute(references=refs, predictions=preds, average=average, labels=LABELS)[name]
    assert ours == pytest.approx(sk_fn(refs, preds, average=average, labels=LABELS, zero_division=0))


def test_bad_average_is_rejected():
    with pytest.raises(ValueError, match="average must be one of"):
        load_metric("f1").compute(references=[0, 1], predictions=[0, 1], average="binary")


def test_classification_report_matches_sklearn(data):
    refs, preds, _ = data
    ours = load_metric("classification_report").compute(
        references=refs, predictions=preds, labels=LABELS, target_names=NAMES
    )
    theirs = skm.classification_report(
        refs, preds, labels=LABELS, target_names=NAMES, output_dict=True, zero_division=0
    )
    assert len(ours) == 4 * N_CLASSES
    for name in NAMES:
        for stat, sk_stat in [("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")]:
            assert ours[f"{stat}/{name}"] == pytest.approx(theirs[name][sk_stat])
        assert ours[f"support/{name}"] == theirs[name]["support"]


def brier_by_formula(refs, probs):
    """Direct transcription: mean over examples of sum over classes of (p - onehot)^2."""
    total = 0.0
    for y, row in zip(refs, probs):
        total += sum((p - (1.0 if c == y else 0.0)) ** 2 for c, p in enumerate(row))
    return total / len(refs)


def test_brier_multiclass_matches_formula(data):
    refs, _, probs = data
    ours = load_metric("brier_score").compute(references=refs, prediction_probabilities=probs)["brier_score"]
    assert ours == pytest.approx(brier_by_formula(refs, probs))
    if tuple(int(x) for x in sklearn.__version__.split(".")[:2]) >= (1, 7):  # multi-class support
        assert ours == pytest.approx(skm.brier_score_loss(refs, probs, labels=LABELS, scale_by_half=False))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_brier_binary_is_twice_sklearn(seed):
    refs, _, probs = make_data(seed, k=2)
    ours = load_metric("brier_score").compute(references=refs, prediction_probabilities=probs)["brier_score"]
    assert ours == pytest.approx(2 * skm.brier_score_loss(refs, probs[:, 1]))


def test_ece_hand_computed():
    # 10 bins. conf 0.9 twice (one right): |0.5 - 0.9| * 2/4 = 0.2; conf 0.6 right:
    # |1 - 0.6| * 1/4 = 0.1; conf 0.7 (class 1) right: |1 - 0.7| * 1/4 = 0.075. Sum 0.375.
    refs = [0, 1, 0, 1]
    probs = [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]
    ece = load_metric("expected_calibration_error")
    out = ece.compute(references=refs, prediction_probabilities=probs, n_bins=10)
    assert out["expected_calibration_error"] == pytest.approx(0.375)
    # one bin: |mean accuracy - mean confidence| = |3/4 - 0.775| = 0.025
    out = ece.compute(references=refs, prediction_probabilities=probs, n_bins=1)
    assert out["expected_calibration_error"] == pytest.approx(0.025)


def test_ece_perfectly_calibrated_is_zero():
    # confidence 0.75 on four examples, three right
    probs = [[0.75, 0.25]] * 4
    out = load_metric("expected_calibration_error").compute(references=[0, 0, 0, 1], prediction_probabilities=probs)
    assert out["expected_calibration_error"] == pytest.approx(0.0)


def ece_by_loop(refs, probs, n_bins):
    """Guo et al.'s reference loop over bins (lo, hi]."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs((pred[in_bin] == refs[in_bin]).mean() - conf[in_bin].mean())
    return ece


def test_ece_matches_reference_loop_with_default_bins(data):
    refs, _, probs = data
    probs = np.round(probs, 1)  # put many confidences exactly on bin edges
    probs[:, 0] += 1 - probs.sum(axis=1)
    out = load_metric("expected_calibration_error").compute(references=refs, prediction_probabilities=probs)
    assert out["expected_calibration_error"] == pytest.approx(ece_by_loop(refs, probs, 15))
    out = load_metric("expected_calibration_error").compute(references=refs, prediction_probabilities=probs, n_bins=5)
    assert out["expected_calibration_error"] == pytest.approx(ece_by_loop(refs, probs, 5))


def test_docstring_examples_run():
    for name in available_metrics():
        module = load_metric(name)
        test = doctest.DocTestParser().get_doctest(type(module).__doc__, {}, name, None, 0)
        assert test.examples, f"{name} has no example"
        result = doctest.DocTestRunner().run(test, out=lambda s: None)
        assert result.failed == 0, f"{name}: docstring example failed"


def test_unknown_metric_suggests_and_lists():
    with pytest.raises(UserError) as err:
        load_metric("acuracy")
    message = str(err.value)
    assert "did you mean 'accuracy'?" in message
    assert "available: " in message and "expected_calibration_error" in message


def test_load_metric_is_cached():
    assert load_metric("f1") is load_metric("f1")


def test_loading_works_offline_without_network(monkeypatch):
    import evaluate.config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)  # read at import time

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    clear_cache()
    try:
        for name in available_metrics():
            assert load_metric(name).name == name
        assert load_metric("accuracy").compute(references=[0, 1], predictions=[0, 0]) == {"accuracy": 0.5}
    finally:
        clear_cache()


def by_name(results: list[MetricResult]) -> dict[str, MetricResult]:
    return {r.name: r for r in results}


def test_classification_metrics_match_sklearn(data):
    refs, preds, probs = data
    results = by_name(classification_metrics(refs, preds, probs, NAMES, bootstrap=200))
    expected = {
        "accuracy": skm.accuracy_score(refs, preds),
        "f1_macro": skm.f1_score(refs, preds, average="macro"),
        "f1_micro": skm.f1_score(refs, preds, average="micro"),
        "precision_macro": skm.precision_score(refs, preds, average="macro"),
        "recall_macro": skm.recall_score(refs, preds, average="macro"),
        "mcc": skm.matthews_corrcoef(refs, preds),
        "brier": brier_by_formula(refs, probs),
        "ece": ece_by_loop(refs, probs, 15),
    }
    per_class = skm.precision_recall_fscore_support(refs, preds, labels=LABELS)
    for stat, values in zip(["precision", "recall", "f1"], per_class):
        expected.update({f"{stat}/{name}": v for name, v in zip(NAMES, values)})
    assert set(results) == set(expected)
    for name, value in expected.items():
        assert results[name].value == pytest.approx(value), name
    assert not results["ece"].higher_is_better and not results["brier"].higher_is_better
    assert all(r.higher_is_better for n, r in results.items() if n not in ("ece", "brier"))
    assert all(r.ci_low is None for n, r in results.items() if n != "accuracy")


def test_absent_class_is_zero_without_warnings():
    refs, preds, probs = make_data(0, k=4)  # class 4 ("tech") never occurs
    probs = np.hstack([probs, np.zeros((len(refs), 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = by_name(classification_metrics(refs, preds, probs, NAMES, bootstrap=0))
    assert results["f1/tech"].value == results["precision/tech"].value == results["recall/tech"].value == 0.0
    expected = skm.f1_score(refs, preds, labels=LABELS, average="macro", zero_division=0)
    assert results["f1_macro"].value == pytest.approx(expected)


def test_bootstrap_ci():
    refs, preds, probs = make_data(0)
    acc = by_name(classification_metrics(refs, preds, probs, NAMES, seed=7))["accuracy"]
    assert acc.ci_low < acc.value < acc.ci_high
    again = by_name(classification_metrics(refs, preds, probs, NAMES, seed=7))["accuracy"]
    assert (again.ci_low, again.ci_high) == (acc.ci_low, acc.ci_high)
    other = by_name(classification_metrics(refs, preds, probs, NAMES, seed=8))["accuracy"]
    assert (other.ci_low, other.ci_high) != (acc.ci_low, acc.ci_high)
    no_ci = by_name(classification_metrics(refs, preds, probs, NAMES, bootstrap=0))["accuracy"]
    assert no_ci.ci_low is None and no_ci.ci_high is None and no_ci.value == acc.value


def test_bootstrap_narrows_with_more_data():
    correct = np.random.default_rng(0).random(20_000) < 0.7
    small = bootstrap_mean_ci(correct[:200].astype(float), 1000, 0, 0.95)
    large = bootstrap_mean_ci(correct.astype(float), 1000, 0, 0.95)  # resampled in chunks
    assert large[1] - large[0] < (small[1] - small[0]) / 5
    # a 95% interval is about 2 * 1.96 * sqrt(p(1-p)/n) wide
    assert large[1] - large[0] == pytest.approx(2 * 1.96 * np.sqrt(0.7 * 0.3 / 20_000), rel=0.15)


def test_wider_confidence_gives_wider_interval():
    scores = (np.random.default_rng(1).random(500) < 0.6).astype(float)
    low90, high90 = bootstrap_mean_ci(scores, 1000, 0, 0.90)
    low99, high99 = bootstrap_mean_ci(scores, 1000, 0, 0.99)
    assert low99 <= low90 and high90 <= high99


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"references": [0, 5]}, "class ids"),
        ({"predictions": [0]}, "length mismatch"),
        ({"probabilities": [[0.5, 0.5], [0.5, 0.5]]}, "shape"),
        ({"bootstrap": -1}, "bootstrap"),
        ({"confidence": 1.0}, "confidence"),
    ],
)
def test_bad_inputs_are_rejected(kwargs, match):
    args = {"references": [0, 1], "predictions": [0, 1], "probabilities": [[0.9, 0.1, 0], [0.2, 0.8, 0]]}
    args.update(kwargs)
    bootstrap = {k: args.pop(k) for k in ("bootstrap", "confidence") if k in args}
    with pytest.raises(ValueError, match=match):
        classification_metrics(**args, label_names=["a", "b", "c"], **bootstrap)
