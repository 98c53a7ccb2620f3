"""int8 quantization of an optimized ONNX graph for the onnxruntime engine.

From ONNX Runtime (``onnxruntime.quantization``): ``quantize_dynamic`` (weights to int8 at
build time, activations quantized per batch at run time, fused ``Attention`` becomes
``QAttention``), ``quant_pre_process`` (symbolic shape inference that knows ORT's contrib
operators), ``quantize_static`` with its MinMax calibrator and QDQ format.

Hand-written here: which operators each mode quantizes and why, the calibration reader over
the build's tokenised training batches, and the record of what was used.

Choices, measured on this machine (2-core Zen 4 with AVX-512 VNNI, ORT 1.32, MiniLM-L6):

* Weights ``QInt8`` (u8 activations x s8 weights, VNNI's native product): ``QUInt8`` weights
  ran 1.4x (batch 1) to 1.6x (batch 32) slower at sequence 128, 2.4x in an earlier measurement.
* Dynamic, ``MatMul`` + ``Attention`` (``QAttention``). Quantizing the embedding too
  (``Gather``, ``EmbedLayerNormalization``) saves memory, not time, and moved the logits a
  little more (max |Δ| 0.0174 against 0.0165). ``DefaultTensorType=FLOAT`` because the
  outputs of ORT's contrib operators have no inferred type.
* Static, QDQ, per channel, MinMax: ``Attention`` has no QDQ quantizer, so static covers the
  attention output and feed-forward ``MatMul`` (3/4 of each layer's weight FLOPs); the QKV
  projection inside ``Attention`` stays fp32, and static runs behind dynamic on this CPU.
  ``quant_pre_process`` (symbolic shape inference) first: without it the activations after
  contrib operators are untyped and silently left fp32 (a weight-only graph, no faster than
  fp32), and the pooler's ``Gemm`` fails ("Unable to get valid quantization scale ...
  bias"). ``Gemm`` (pooler, classifier) stays fp32 by default: two small products, and the
  classifier's output is the logits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType
from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic
from onnxruntime.quantization import quantize_static as ort_quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from hub.errors import UserError


DYNAMIC_OP_TYPES = ("MatMul", "Attention")
STATIC_OP_TYPES = ("MatMul",)


def resolve(options: dict[str, Any], mode: str) -> dict[str, Any]:
    """The quantization settings from the user's options, checked before anything is built."""
    op_types = _op_types(options.get("op_types"), DYNAMIC_OP_TYPES if mode == "dynamic" else STATIC_OP_TYPES)
    per_channel = options.get("per_channel", True)     # static only: one scale per output channel
    if not isinstance(per_channel, bool):
        raise UserError(f"--option per_channel={per_channel}: expected per_channel=true or per_channel=false")
    return {"mode": mode, "op_types": op_types, "per_channel": per_channel and mode == "static"}


def quantize(src: Path, dst: Path, settings: dict[str, Any], batches: list[dict], work: Path,
             input_names: list[str]) -> dict[str, Any]:
    """Write the int8 graph of ``src`` to ``dst``; return the quantization options used."""
    if settings["mode"] == "dynamic":
        return quantize_dynamic(src, dst, settings["op_types"])
    feeds = [{k: v for k, v in batch.items() if k in input_names} for batch in batches]
    if not feeds:
        raise UserError("static int8 quantization needs calibration texts, and the training split gave none; "
                        "use --option quantization=dynamic")
    return quantize_static(src, dst, settings["op_types"], feeds, work, per_channel=settings["per_channel"])


def _op_types(value: Any, default: tuple[str, ...]) -> list[str]:
    """``op_types`` as a list (``--option op_types=MatMul,Attention`` arrives as one string)."""
    if value is None:
        return list(default)
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise UserError(f"--option op_types={value!r}: name at least one ONNX operator, e.g. op_types=MatMul")
    return names


def quantize_dynamic(src: Path, dst: Path, op_types: list[str]) -> dict[str, Any]:
    ort_quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                         use_external_data_format=False,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"quantization": "dynamic", "weight_type": "QInt8", "activation_type": "QUInt8 (per batch, at run time)",
            "op_types": op_types, "per_channel": False}


class CalibrationBatches(CalibrationDataReader):
    """ORT's calibration reader over a list of feed dicts (read once)."""

    def __init__(self, feeds: list[dict]) -> None:
        self._iter = iter(feeds)

    def get_next(self) -> dict | None:
        return next(self._iter, None)


def quantize_static(src: Path, dst: Path, op_types: list[str], feeds: list[dict], work: Path, *,
                    per_channel: bool = True) -> dict[str, Any]:
    typed = work / "static-typed.onnx"
    quant_pre_process(str(src), str(typed), skip_optimization=True, auto_merge=True)
    ort_quantize_static(str(typed), str(dst), CalibrationBatches(feeds), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=op_types, per_channel=per_channel, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        use_external_data_format=False, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    examples = sum(len(next(iter(feed.values()))) for feed in feeds)
    return {"quantization": "static", "format": "QDQ", "weight_type": "QInt8", "activation_type": "QUInt8",
            "op_types": op_types, "per_channel": per_channel, "calibration": "MinMax",
            "calibration_batches": len(feeds), "calibration_examples": examples}
