"""Load a stored text-classification variant as a torch predictor.

A variant with ``model/`` loads directly (merged or fully fine-tuned weights); a variant
with only ``adapter/`` (prompt tuning) loads its base model and applies the adapter.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hub.errors import UserError, first_line
from hub.predictor import BatchedPredictor


class TorchPredictor(BatchedPredictor):
    """Eager torch inference on the shared batching front (distinct inputs once, sorted by length)."""

    def __init__(self, model: Any, tokenizer: Any, labels: list[str], *, max_length: int = 128,
                 batch_size: int = 64, progress: bool = False) -> None:
        super().__init__(tokenizer, labels, engine="torch-fp32", max_length=max_length, batch_size=batch_size,
                         progress=progress)
        self.model = model.eval()
        self.input_names = tuple(tokenizer.model_input_names)   # what the tokenizer gives, as before

    @torch.inference_mode()
    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()


def load_model(store: Any, record: Any) -> tuple[Any, Any]:
    """(model, tokenizer) of a stored variant, from safetensors only."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import tasks.text_classification.pruned_bert  # noqa: F401  (registers pruned BERT with the Auto classes)

    folder = store.variant_folder(record)   # a row whose folder was deleted: say so, not "Repo id must be ..."
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
        if record.has_merged:
            model = AutoModelForSequenceClassification.from_pretrained(folder / "model", use_safetensors=True)
        else:
            from peft import PeftModel

            from hub.models import load_classifier

            spec = record.run_config.get("model", {})   # the base as trained: its resolved path, revision
            base = load_classifier(spec.get("name", record.base_model), record.labels,
                                   revision=spec.get("revision"),
                                   trust_remote_code=bool(spec.get("trust_remote_code", False)))
            model = PeftModel.from_pretrained(base, folder / "adapter")
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        first = first_line(exc)
        raise UserError(f"variant '{record.id}': its stored files cannot be loaded ({first}); "
                        f"re-train it or remove {folder}") from None
    return model.eval(), tokenizer


def load_predictor(store: Any, record: Any, *, batch_size: int = 64, progress: bool = False) -> TorchPredictor:
    model, tokenizer = load_model(store, record)
    max_length = record.run_config.get("model", {}).get("max_length", 128)
    return TorchPredictor(model, tokenizer, record.labels, max_length=max_length, batch_size=batch_size,
                          progress=progress)
