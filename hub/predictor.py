"""The predictor contract every backend answers, so evaluators and demos never care which runs.

``predict_proba(texts) -> np.ndarray [n, num_labels]`` and ``predict(texts) -> list[str]``;
``labels`` names the columns; ``engine`` says what actually runs (e.g. ``torch-fp32``).
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import numpy as np


@runtime_checkable
class Predictor(Protocol):
    labels: list[str]
    engine: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict(self, texts: Sequence[str]) -> list[str]: ...


class PredictorBase:
    """Shared ``predict`` on top of ``predict_proba``."""

    labels: list[str]
    engine: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, texts: Sequence[str]) -> list[str]:
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(axis=1)]
