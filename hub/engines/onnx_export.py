"""ONNX export of a sequence classifier with dynamic batch and sequence axes.

The classic TorchScript-based exporter (``dynamo=False``) at opset 17: ONNX Runtime's
transformer fusions (attention, LayerNorm, GELU) match its graphs but not the dynamo
export's. The model is exported with transformers' eager attention: ORT 1.32's attention
fusion matches the eager graph (matmul, scale, mask add, softmax) but not the SDPA
decomposition transformers 5 uses by default. The result is checked with the ONNX checker.
"""

from __future__ import annotations

import inspect
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from hub.errors import UserError, first_line

OPSET = 17


class _LogitsOnly(torch.nn.Module):
    """Return the logits tensor, not the model output object, so the graph has one output."""

    def __init__(self, model: Any, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs))).logits


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """The model with transformers' eager attention inside the block, restored afterwards."""
    before = getattr(model.config, "_attn_implementation", None)
    if not hasattr(model, "set_attn_implementation") or before in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def input_names_for(model: Any, tokenizer: Any) -> list[str]:
    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in accepted and "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")
    return names


def export_onnx(model: Any, tokenizer: Any, path: Path, *, max_length: int = 128, opset: int = OPSET) -> dict:
    """Export ``model`` to ``path``; return the export's metadata (opset, inputs, outputs)."""
    import onnx

    names = input_names_for(model, tokenizer)
    sample = tokenizer(["an example sentence for tracing", "a second, longer example sentence for tracing"],
                       padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    args = tuple(sample[n] for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names} | {"logits": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new Module starts in training mode and the exporter restores that mode afterwards,
    # recursively: without .eval() here the caller's model would come back with dropout on.
    wrapper = _LogitsOnly(model, names).eval()
    try:
        with torch.no_grad(), eager_attention(model), warnings.catch_warnings():
            # Tracer notes on transformers' shape checks and opset-17 indexing: expected, not actionable.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index operator")
            torch.onnx.export(wrapper, args, str(path), input_names=names,
                              output_names=["logits"], dynamic_axes=axes, opset_version=opset,
                              do_constant_folding=True, dynamo=False)
        onnx.checker.check_model(str(path))
    except (RuntimeError, TypeError, ValueError, onnx.checker.ValidationError) as exc:
        first = first_line(exc)
        raise UserError(f"the ONNX exporter cannot handle this model ({type(model).__name__}): {first}") from None
    return {"opset": opset, "inputs": names, "outputs": ["logits"], "attention": "eager",
            "exporter": "torch.onnx (dynamo=False)",
            "torch": torch.__version__, "onnx": onnx.__version__}
