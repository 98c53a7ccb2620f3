"""The `classification` evaluator: task metrics, calibration and per-example predictions."""

from __future__ import annotations

from typing import Any

import numpy as np

from hub.results import EvalOutput


class ClassificationEvaluator:
    name = "classification"
    needs_gradients = False
    options = None   # nothing to set but bootstrap

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, bootstrap: int = 1000, **_: Any) -> EvalOutput:
        from evaluators.classification import classification_metrics

        probs = predictor.predict_proba(texts)
        preds = probs.argmax(axis=1)
        metrics = classification_metrics(np.asarray(references), preds, probs, labels,
                                         bootstrap=bootstrap, seed=seed)
        records = [{"idx": i, "text": text, "label": labels[ref], "prediction": labels[pred],
                    "probabilities": [round(float(p), 6) for p in row]}
                   for i, (text, ref, pred, row) in enumerate(zip(texts, references, preds, probs))]
        return EvalOutput(metrics=metrics, predictions=records)
