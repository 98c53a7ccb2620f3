"""Load a stored text-classification variant as a torch predictor.

A variant with ``model/`` loads directly (merged or fully fine-tuned weights); a variant
with only ``adapter/`` (prompt tuning) loads its base model and applies the adapter.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from hub.errors import UserError
from hub.predictor import PredictorBase


class TorchPredictor(PredictorBase):
    """Eager torch inference in batches, sorted by length so padding stays small."""

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], *, max_length: int = 128,
                 batch_size: int = 64, progress: bool = False) -> None:
        self.model = model.eval()
        self.progress = progress
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.max_length = max_length
        self.batch_size = batch_size
        self.engine = "torch-fp32"

    @torch.inference_mode()
    def logits(self, texts: Sequence[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        if self.progress and len(starts) > 1:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="predicting", unit="batch")
        for start in starts:
            idx = order[start:start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="pt")
            out[idx] = self.model(**enc).logits.float().numpy()
        return out

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.logits(list(texts))
        return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


def load_model(store: Any, record: Any) -> tuple[Any, Any]:
    """(model, tokenizer) of a stored variant, from safetensors only."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = store.variant_path(record.id)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        if record.has_merged:
            model = AutoModelForSequenceClassification.from_pretrained(folder / "model", use_safetensors=True)
        else:
            from peft import PeftModel

            from hub.models import load_classifier

            base = load_classifier(record.base_model, record.labels)
            model = PeftModel.from_pretrained(base, folder / "adapter")
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"variant '{record.id}': its stored files cannot be loaded ({first}); "
                        f"re-train it or remove {folder}") from None
    return model.eval(), tokenizer


def load_predictor(store: Any, record: Any, *, batch_size: int = 64, progress: bool = False) -> TorchPredictor:
    model, tokenizer = load_model(store, record)
    max_length = record.run_config.get("model", {}).get("max_length", 128)
    return TorchPredictor(model, tokenizer, record.labels, max_length=max_length, batch_size=batch_size,
                          progress=progress)
