"""The predictor shared by every engine: tokenise with numpy, batch by length, run.

Inputs longer than the engine's maximum length are truncated with a warning (once per
predictor: a long-document dataset would otherwise repeat it on every call), never a crash (a TensorRT profile, for one, cannot take longer sequences).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from hub.predictor import PredictorBase

log = logging.getLogger(__name__)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class EnginePredictor(PredictorBase):
    """Subclasses implement :meth:`run` on one padded batch of numpy int64 arrays."""

    input_names: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")

    def __init__(self, tokenizer: Any, labels: list[str], *, engine: str, max_length: int = 128,
                 batch_size: int = 32) -> None:
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.engine = engine
        self.max_length = max_length
        self.batch_size = batch_size
        self.truncated = 0          # texts cut to max_length by the last call
        self._warned = False        # the truncation warning is given once per predictor

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                             return_overflowing_tokens=True, return_tensors="np")
        mapping = enc.pop("overflow_to_sample_mapping")
        keep = np.r_[True, mapping[1:] != mapping[:-1]]    # first window of every text
        self.truncated += len(np.unique(mapping[~keep]))
        return {k: v[keep].astype(np.int64) for k, v in enc.items() if k in self.input_names}

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        self.truncated = 0
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            out[idx] = self.run(self.encode([texts[i] for i in idx]))
        if self.truncated and not self._warned:
            self._warned = True
            log.warning("%s: %d text(s) longer than %d tokens were truncated (said once per engine)",
                        self.engine, self.truncated, self.max_length)
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return softmax(self.logits(list(texts)).astype(np.float64)).astype(np.float32)
