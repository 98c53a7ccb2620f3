"""The predictor every engine subclasses: :class:`hub.predictor.BatchedPredictor` under its engine name.

Tokenising, deduplicating identical model inputs, length-sorted batching and the truncation
warning live there, shared with the torch predictor; an engine implements only
``run(inputs) -> logits`` on one padded batch.
"""

from __future__ import annotations

from hub.predictor import BatchedPredictor, softmax

__all__ = ["EnginePredictor", "softmax"]


class EnginePredictor(BatchedPredictor):
    """Subclasses implement :meth:`run` on one padded batch of numpy int64 arrays."""
