"""OpenVINO engine: an IR (``model.xml`` + ``model.bin``) compiled for the CPU with explicit hints.

From OpenVINO: graph conversion (``openvino.convert_model``), the IR format
(``save_model`` / ``read_model``), graph compilation, kernel choice and bf16/int8
execution (``compile_model``, ``InferRequest``). From NNCF: int8 post-training
quantization (``nncf.quantize``: statistics, SmoothQuant for transformers, where
quantize/dequantize pairs go, bias correction).

Hand-written here: which graph to convert (the torch model by default, falling back to
the build's shared ONNX export), naming the inputs and making batch and sequence dynamic,
the calibration samples (one unpadded text per NNCF sample), the compile hints per
precision, feeding only the inputs the IR declares, splitting a batch over the streams in
throughput mode, the record of what was used, and turning an unreadable IR into a
:class:`UserError`.

Options (``--option KEY=VALUE``), recorded in ``engine.json`` and applied again at load:
``source`` torch|onnx, ``preset`` mixed|performance (int8), ``mode`` latency|throughput,
``threads`` N (default: every core this process may use), ``static`` full-window|off.

``static=full-window`` (latency mode): a batch of one text, or of ``batch_size`` texts, that
fills the whole window (``max_length`` tokens; nearly every batch of a long-document dataset,
all but one of bbc-news's test texts) runs on a copy of the model compiled for exactly that shape,
compiled on first use; every other shape runs on the dynamic one. Measured on BERT-base int8,
b1 s128, 2 cores: 32.2 ms static against 34.1 ms dynamic (an upper-bounded dynamic shape
gained nothing); compiling the copy took 0.85 s.

Measured on MiniLM, s128, 2 cores (avx512_bf16, no AMX), medians of alternating runs:
from torch the IR ran 0-15% faster than from ONNX (int8 at batch 32: 11-15%), with the same
fp32 parity and slightly closer int8 logits; preset ``mixed`` kept accuracy slightly better than
``performance`` at the same speed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.base import Backend, BuildContext, EngineRecord
from hub.engines.predictor import EnginePredictor
from hub.errors import UserError, first_line

log = logging.getLogger(__name__)

# INFERENCE_PRECISION_HINT per engine precision; None leaves OpenVINO's default (bf16 on
# a CPU with bf16 units, f32 elsewhere) for the layers int8 does not cover.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": None}
CHOICES = {"source": ("onnx", "torch"), "preset": ("mixed", "performance"), "mode": ("latency", "throughput"),
           "static": ("full-window", "off")}
DEFAULTS = {"source": "torch", "preset": "mixed", "mode": "latency", "static": "full-window"}
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_TYPE_NAMES = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


def _choice(options: dict[str, Any], key: str) -> str:
    value = str(options.get(key, DEFAULTS[key])).lower()
    if value not in CHOICES[key]:
        raise UserError(f"--option {key}={value}: the openvino backend takes {key}="
                        f"{' or '.join(CHOICES[key])}")
    return value


def _threads(options: dict[str, Any]) -> int | None:
    value = options.get("threads")
    if value is None:
        return None
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise UserError(f"--option threads={value}: expected a whole number of threads >= 1")
    return int(value)


def compile_config(precision: str, mode: str = "latency", threads: int | None = None) -> dict[str, Any]:
    """The explicit ``compile_model`` hints of an engine (``threads=None``: all usable cores)."""
    config: dict[str, Any] = {"PERFORMANCE_HINT": mode.upper(),
                              "INFERENCE_NUM_THREADS": threads or len(os.sched_getaffinity(0))}
    if PRECISION_HINTS[precision]:
        config["INFERENCE_PRECISION_HINT"] = PRECISION_HINTS[precision]
    return config


def inference_precision(compiled: Any) -> str:
    """What the compiled model actually computes in ("bf16", "fp32"…), as OpenVINO reports it."""
    kind = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return _TYPE_NAMES.get(kind, kind)


def _declare_inputs(model: Any, names: list[str]) -> Any:
    """Name the inputs and make batch and sequence dynamic (int64 [?, ?]), output 'logits'."""
    import openvino as ov

    for name, port in zip(names, model.inputs):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({"logits"})
    model.reshape({port: ov.PartialShape([-1, -1]) for port in model.inputs})
    return model


def _from_onnx(ctx: BuildContext) -> tuple[Any, list[str]]:
    import openvino as ov

    path, meta = ctx.onnx_model()
    return _declare_inputs(ov.convert_model(str(path)), meta["inputs"]), meta["inputs"]


def _from_torch(ctx: BuildContext) -> tuple[Any, list[str]]:
    import openvino as ov
    import torch

    from hub.engines.onnx_export import _LogitsOnly, input_names_for

    names = input_names_for(ctx.model, ctx.tokenizer)
    sample = ctx.tokenizer(["an example sentence for tracing", "a second, longer example sentence"],
                           padding=True, return_tensors="pt")
    wrapper = _LogitsOnly(ctx.model, names).eval()     # eval(): see onnx_export, the same trap
    with torch.no_grad():
        model = ov.convert_model(wrapper, example_input=tuple(sample[n] for n in names),
                                 input=[(ov.PartialShape([-1, -1]), ov.Type.i64) for _ in names])
    return _declare_inputs(model, names), names


def convert(ctx: BuildContext, source: str, *, fallback: bool = False) -> tuple[Any, list[str], dict[str, Any]]:
    """An fp32 ``openvino.Model`` of ``ctx.model``, its input names and the source used.

    From torch, OpenVINO's PyTorch frontend keeps attention as one ScaledDotProductAttention
    op, which the CPU plugin runs fused; the ONNX graph spells it out as MatMul/Softmax/Select.
    With ``fallback``, a model the PyTorch frontend cannot convert goes through ONNX instead.
    """
    if source == "onnx":
        return *_from_onnx(ctx), {"source": "onnx"}
    try:
        return *_from_torch(ctx), {"source": "torch"}
    except Exception as exc:  # noqa: BLE001 - the frontend raises many types; ONNX is the way round
        first = first_line(exc)
        if not fallback:
            raise UserError(f"OpenVINO cannot convert this model from torch ({first}); "
                            "try --option source=onnx") from None
        log.warning("openvino: converting from torch failed (%s); converting the ONNX export instead", first)
        return *_from_onnx(ctx), {"source": "onnx", "source_fallback": first}


def quantize(model: Any, ctx: BuildContext, names: list[str], preset: str) -> tuple[Any, dict[str, Any]]:
    """int8 through NNCF post-training quantization, calibrated one text per sample."""
    import nncf

    # One unpadded text per sample, so that NNCF's subset_size (which counts dataset items)
    # is the number of texts; padded batches of 8 measured the same accuracy on MiniLM.
    samples = ctx.calibration_batches(batch_size=1, limit=len(ctx.calibration_texts))
    if not samples:
        raise UserError("int8 needs calibration texts from the training split, and there are none")
    dataset = nncf.Dataset(samples, lambda item: {n: item[n] for n in names})
    # NNCF draws rich progress bars on stdout (statistics, SmoothQuant, bias correction: a few
    # seconds each); they say nothing the build's own log lines do not, so they go nowhere
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        quantized = nncf.quantize(model, dataset, subset_size=len(samples), model_type=nncf.ModelType.TRANSFORMER,
                                  preset=getattr(nncf.QuantizationPreset, preset.upper()))
    return quantized, {"nncf": nncf.__version__, "nncf_preset": preset, "nncf_subset_size": len(samples),
                       "nncf_model_type": "transformer"}


class OpenVinoBackend(Backend):
    name = "openvino"
    package = "openvino"
    install_hint = "pip install 'evalhub[openvino]'"
    precisions = ("fp32", "bf16", "int8")
    bulk_options = {"mode": "throughput"}
    option_keys = frozenset({"source", "preset", "mode", "threads", "static"})

    def build(self, ctx: BuildContext, folder: Path, precision: str) -> dict[str, Any]:
        import openvino as ov

        source, mode, preset, static = (_choice(ctx.options, key) for key in ("source", "mode", "preset", "static"))
        threads = _threads(ctx.options)
        model, names, used = convert(ctx, source, fallback="source" not in ctx.options)
        used |= {"openvino": ov.__version__, "inputs": names, "dynamic_axes": {"batch": 0, "sequence": 1},
                 "mode": mode, "threads": threads, "static": static,
                 "precision_hint": PRECISION_HINTS[precision] or "default"}
        if precision == "int8":
            model, nncf_used = quantize(model, ctx, names, preset)
            used.update(nncf_used)
        folder.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, folder / "model.xml", compress_to_fp16=False)
        compiled = ov.Core().compile_model(model, "CPU", compile_config(precision, mode, threads))
        used["inference_precision"] = inference_precision(compiled)    # what this CPU really does
        return used

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> OvPredictor:
        import openvino as ov

        xml = Path(folder) / "model.xml"
        mode, static = (_choice(record.options, key) for key in ("mode", "static"))
        config = compile_config(record.precision, mode, record.options.get("threads"))
        core = ov.Core()
        try:
            model = core.read_model(xml)
            compiled = core.compile_model(model, "CPU", config)
        except RuntimeError as exc:
            first = first_line(exc)
            raise UserError(f"engine '{record.id}': cannot read the OpenVINO IR {xml} ({first}); "
                            "rebuild the engine") from None
        streams = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS") if mode == "throughput" else 1
        engine = f"openvino-{record.precision} (CPU, {inference_precision(compiled)} inference"
        engine += f", {streams} streams)" if streams > 1 else ")"
        return OvPredictor(compiled, tokenizer, labels, engine=engine, max_length=record.max_length, streams=streams,
                           static_compile=(_static_compiler(core, model, config)
                                           if static == "full-window" and streams == 1 else None))


def _static_compiler(core: Any, model: Any, config: dict[str, Any]) -> Any:
    """shape -> ``model`` compiled for exactly that (batch, sequence) shape."""
    import openvino as ov

    def compile_for(shape: tuple[int, int]) -> Any:
        fixed = model.clone()
        fixed.reshape({port: ov.PartialShape(list(shape)) for port in fixed.inputs})
        return core.compile_model(fixed, "CPU", config)
    return compile_for


class OvPredictor(EnginePredictor):
    """Runs padded batches on a compiled model.

    Latency mode: one reused ``InferRequest``. Throughput mode: OpenVINO splits the cores
    into streams, and one request would use only one of them, so each batch is cut into
    one slice per stream and run through an ``AsyncInferQueue`` (int8 MiniLM, batch 32, 2
    cores: 15-35% faster than latency mode; a batch of 1 gets one core, hence not the default).
    """

    def __init__(self, compiled: Any, tokenizer: Any, labels: list[str], *, engine: str, max_length: int,
                 streams: int = 1, static_compile: Any = None) -> None:
        import openvino as ov

        super().__init__(tokenizer, labels, engine=engine, max_length=max_length)
        declared = tuple(port.get_any_name() for port in compiled.inputs)
        unknown = [n for n in declared if n not in KNOWN_INPUTS]
        if unknown:
            raise UserError(f"{engine}: the IR wants input(s) {', '.join(unknown)}, which a tokenizer does not "
                            "give; rebuild the engine")
        self.input_names = declared      # encode() keeps only what the model declares
        self.compiled, self.streams = compiled, streams
        self.request = compiled.create_infer_request() if streams == 1 else None
        self.queue = ov.AsyncInferQueue(compiled, streams) if streams > 1 else None
        if self.queue is not None:
            self.queue.set_callback(_collect)
        self.static_compile = static_compile      # shape -> compiled model; None: dynamic shapes only
        self.static: dict[tuple[int, int], Any] = {}   # full-window shape -> its own InferRequest
        # one request (or queue) serves every call: callers on other threads (the app) take turns
        self._lock = threading.Lock()

    def _request(self, shape: tuple[int, int]) -> Any:
        """The static-shape request of a full-window batch (compiled on first use), else the dynamic one."""
        if self.static_compile is None or shape[1] != self.max_length or shape[0] not in (1, self.batch_size):
            return self.request
        if shape not in self.static:
            try:
                self.static[shape] = self.static_compile(shape).create_infer_request()
            except RuntimeError as exc:   # the dynamic model still runs it: say so once, keep serving
                first = first_line(exc)
                log.warning("%s: no static-shape copy for %s (%s); using dynamic shapes", self.engine, shape, first)
                self.static[shape] = self.request
        return self.static[shape]

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise UserError(f"{self.engine}: the tokenizer gives no {', '.join(missing)}, which the IR needs")
        with self._lock:
            return self._run({n: inputs[n] for n in self.input_names})

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        if self.queue is None:
            request = self._request(feed[self.input_names[0]].shape)
            return np.array(request.infer(feed)[0], dtype=np.float32)   # a copy: buffers are reused
        rows = len(feed[self.input_names[0]])
        parts: list[np.ndarray] = [np.empty(0)] * min(self.streams, rows)
        for i, part in enumerate(np.array_split(np.arange(rows), len(parts))):
            self.queue.start_async({n: v[part[0]:part[-1] + 1] for n, v in feed.items()}, userdata=(parts, i))
        self.queue.wait_all()
        return np.concatenate(parts).astype(np.float32, copy=False)


def _collect(request: Any, userdata: tuple[list[np.ndarray], int]) -> None:
    parts, i = userdata
    parts[i] = np.array(request.get_output_tensor(0).data)
