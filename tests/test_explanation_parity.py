"""Explanation parity (evaluators/explain/agreement.py) on scripted predictors whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.explain.agreement import compare, explain_reference, explanation_parity, sample_texts

TEXTS = ["good great fine film tonight", "bad awful plot and acting", "great acting bad plot overall",
         "the film was fine", "awful awful good"]


class BagOfWords:
    """p(positive) = sigmoid(sum of word weights): leave-one-out ranks words by their weights."""

    labels = ["negative", "positive"]
    engine = "scripted"

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        score = np.array([sum(self.weights.get(w, 0.0) for w in t.split()) for t in texts])
        p = 1 / (1 + np.exp(-score))
        return np.stack([1 - p, p], axis=1)


WEIGHTS = {"good": 1.0, "great": 1.5, "fine": 0.3, "bad": -1.2, "awful": -2.0, "acting": 0.1, "plot": -0.2}


def test_a_predictor_against_itself_agrees_perfectly():
    model = BagOfWords(WEIGHTS)
    reference = explain_reference(model, TEXTS, n=len(TEXTS))
    figures = explanation_parity(reference, model)
    assert figures["explanation_tau"] == pytest.approx(1.0)
    assert figures["explanation_topk_overlap"] == pytest.approx(1.0)
    assert figures["explanation_texts"] == len(TEXTS)


class LinearProb(BagOfWords):
    """p(positive) = 0.5 + sum of word weights / 100: leave-one-out gives each word's weight exactly."""

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        p = np.array([0.5 + sum(self.weights.get(w, 0.0) for w in t.split()) / 100 for t in texts])
        return np.stack([1 - p, p], axis=1)


def test_reversed_importance_gives_tau_minus_one_and_no_overlap():
    reference = explain_reference(LinearProb(dict(zip("abcde", [1, 2, 3, 4, 5]))), ["a b c d e"], n=1)
    assert reference.targets == [1]
    np.testing.assert_allclose(reference.attributions[0], [0.01, 0.02, 0.03, 0.04, 0.05])
    figures = explanation_parity(reference, LinearProb(dict(zip("abcde", [5, 4, 3, 2, 1]))), top_k=2)
    assert figures["explanation_tau"] == pytest.approx(-1.0)
    assert figures["explanation_topk_overlap"] == 0.0
    half = explanation_parity(reference, LinearProb(dict(zip("abcde", [1, 2, 3, 5, 0.5]))), top_k=2)
    assert half["explanation_topk_overlap"] == 0.5       # d is in both top-2 sets, e only in the reference's


def test_constant_attributions_are_counted_not_averaged():
    flat = [np.zeros(4), np.array([1.0, 2.0, 3.0, 4.0])]
    figures = compare(flat, [np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0, 4.0])], top_k=2)
    assert figures["explanation_n_constant"] == 1 and figures["explanation_tau"] == pytest.approx(1.0)
    assert compare([], [])["explanation_tau"] is None


def test_the_sample_is_seeded_and_skips_empty_texts():
    texts = [f"text number {i}" for i in range(50)] + ["", "   "]
    first, again = sample_texts(texts, 10, seed=3), sample_texts(texts, 10, seed=3)
    assert first == again and len(first) == 10 and all(t.strip() for t in first)
    assert first == [t for t in texts if t in first]     # in split order
    assert sample_texts(texts, 100, seed=0) == texts[:50]
