"""ONNX Runtime engine: the fp32 ONNX export, optimized offline, in fp32, fp16 or int8.

From ONNX Runtime: the transformer graph optimizer (``onnxruntime.transformers.optimizer``:
its basic graph passes, then the Python fusions into ``Attention``, ``EmbedLayerNormalization``,
``SkipLayerNormalization``, ``BiasGelu``/``FastGelu``), the fp16 conversion
(``convert_float_to_float16``), quantization (see :mod:`hub.engines.ort_quantize`), the
session with its execution providers and its own run-time graph optimizations.

Hand-written here: the optimizer level, each fused attention's head count from its own
weights (a pruned model has different counts per layer: see :func:`set_layer_heads`), the
session options for this machine, provider choice, feeding only the inputs the graph
declares, the record of what was used, and an unreadable ``model.onnx`` as a :class:`UserError`.

The shared export uses eager attention (see :mod:`hub.engines.onnx_export`): ORT 1.32's
attention fusion does not match transformers 5's default SDPA graph (its "sdpa" pattern
wants a ``Sqrt`` that the exporter's constant folding has removed). Unfused, int8 dynamic
quantization would also quantize the activation x activation products (QK^T, attention x V).

Options (``--option KEY=VALUE``; keys of other backends are ignored, ``auto`` hands the same
options to every backend):

* ``quantization`` dynamic|static (int8; default dynamic), ``per_channel`` (static, default
  true), ``op_types`` (comma-separated ONNX operators to quantize).
* ``provider`` cpu|cuda|tensorrt (default: TensorRT, then CUDA where this onnxruntime has
  them, else CPU), ``threads`` N (default: the physical cores this process may use),
  ``spinning`` (default false: idle ORT threads sleep instead of spinning; on these shared
  2-core machines spinning threads made int8 batch-1 runs ~1.6x slower, median of 21).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.base import Backend, BuildContext, EngineRecord
from hub.engines.predictor import EnginePredictor
from hub.errors import UserError, first_line

log = logging.getLogger(__name__)

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# Offline level 1 (ORT's provider-independent passes: constant folding, redundant nodes) and
# then the Python fusions. Levels 2 and 99 write provider-specific nodes into the file and turn
# several fusions off; what they would add, the session does at load time instead.
OPT_LEVEL = 1
FUSIONS = ("EmbedLayerNormalization", "Attention", "MultiHeadAttention", "SkipLayerNormalization",
           "LayerNormalization", "BiasGelu", "FastGelu", "Gelu", "GemmFastGelu")
# The session's own graph optimizations at load time. On the offline-optimized fp32 and int8
# graphs ORT_ENABLE_ALL and ORT_ENABLE_EXTENDED give the same graph (both fuse the int8 pairs
# into DynamicQuantizeMatMul / QLinearMatMul); on fp16 ALL leaves 29 Casts where EXTENDED leaves 74.
SESSION_LEVEL = "all"
QUANTIZATION_MODES = ("dynamic", "static")


def _provider(options: dict[str, Any]) -> str | None:
    value = options.get("provider")
    if value is None or str(value).lower() == "auto":
        return None
    name = PROVIDERS.get(str(value).lower(), str(value))
    if name not in PROVIDERS.values():
        raise UserError(f"--option provider={value}: the onnxruntime backend takes provider="
                        f"{' or '.join(PROVIDERS)} (or auto)")
    return name


def _spinning(options: dict[str, Any]) -> bool:
    value = options.get("spinning", False)
    if not isinstance(value, bool):
        raise UserError(f"--option spinning={value}: expected spinning=true or spinning=false")
    return value


def _threads(options: dict[str, Any]) -> int:
    value = options.get("threads")
    if value is None or value == "auto":         # decided where the engine is loaded, not built
        return physical_cores()
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 1:
        raise UserError(f"--option threads={value}: expected a whole number of threads >= 1")
    return int(value)


def physical_cores() -> int:
    """Cores this process may use, counting SMT siblings once (ORT's threads each want a core)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or usable
        logical = psutil.cpu_count(logical=True) or usable
    except ImportError:
        return usable
    return max(1, usable * physical // logical)


def optimize(src: Path, config: Any, use_gpu: bool, *, attention: bool = True) -> Any:
    """ORT's transformer optimizer over ``src`` (an ``OnnxModel`` back, not yet saved);
    ``attention=False`` leaves attention unfused."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_attention = attention
    return optimize_model(str(src), model_type="bert", num_heads=getattr(config, "num_attention_heads", 0),
                          hidden_size=getattr(config, "hidden_size", 0), opt_level=OPT_LEVEL, use_gpu=use_gpu,
                          optimization_options=options)


def fusions(optimizer: Any) -> dict[str, int]:
    stats = optimizer.get_fused_operator_statistics()
    return {name: int(stats[name]) for name in FUSIONS if stats.get(name)}


def optimized_graph(ctx: BuildContext, use_gpu: bool) -> tuple[Any, dict[str, Any]]:
    """ORT's optimizer over the build's shared export (exported with eager attention, which
    ORT's attention fusion recognises), each fused attention given its own layer's head count."""
    path, meta = ctx.onnx_model()
    config = ctx.model.config
    optimizer = optimize(path, config, use_gpu)
    extra: dict[str, Any] = {}
    try:
        heads = set_layer_heads(optimizer, head_size_of(config))
    except ValueError as exc:   # a fused node whose width is not whole heads: fuse no attention at all
        log.warning("onnxruntime: attention fusion skipped: %s", exc)
        optimizer = optimize(path, config, use_gpu, attention=False)
        extra["attention_fusion"] = f"skipped: {exc}"
    else:
        if heads and set(heads) != {getattr(config, "num_attention_heads", 0)}:
            extra["attention_heads"] = heads   # a pruned model: per-layer counts, not the config's one
    found = fusions(optimizer)
    if getattr(config, "num_hidden_layers", 0) and not found.get("Attention") and not extra.get("attention_fusion"):
        log.warning("onnxruntime: attention did not fuse (%s); the engine runs unfused attention", found)
    return optimizer, {"exporter": meta.get("exporter"), "attention": meta.get("attention"),
                       "opset": meta.get("opset"),
                       "optimizer": {"model_type": "bert", "opt_level": OPT_LEVEL, "use_gpu": use_gpu},
                       "fusions": found, **extra}


def head_size_of(config: Any) -> int:
    heads = getattr(config, "num_attention_heads", 0)
    return getattr(config, "hidden_size", 0) // heads if heads else 0


def set_layer_heads(optimizer: Any, head_size: int) -> list[int]:
    """Give every fused attention node the head count of its own weights; returns them, in graph order.

    ORT's attention fusion reads a layer's head count from the Reshape before it, but BERT reshapes
    to (batch, sequence, -1, head_size), so the fusion falls back to the one ``num_heads`` given to
    the optimizer and writes it into every layer. A pruned model (``evalhub prune``) has fewer heads
    in some layers: the node would split its narrower Q/K/V into that many heads of the wrong size,
    scaled by the wrong 1/sqrt(head size). The result runs, and is quietly wrong (on a tiny BERT
    with peaked attention |Δlogit| went from 1e-8 to 1e-3). The head size is the same in every layer
    (pruning removes whole heads), so a node's head count is its query width over the head size.
    ValueError for a node whose width is not a whole number of heads.
    """
    counts = []
    for node in optimizer.model.graph.node:
        if node.op_type not in ("Attention", "MultiHeadAttention") or head_size <= 0:
            continue
        width = _query_width(optimizer, node)
        if width is None or width % head_size:
            raise ValueError(f"{node.op_type} node {node.name!r}: query width {width} is not a whole number "
                             f"of {head_size}-wide heads")
        for attribute in node.attribute:
            if attribute.name == "num_heads":
                attribute.i = width // head_size
        counts.append(width // head_size)
    return counts


def _query_width(optimizer: Any, node: Any) -> int | None:
    """The query projection's width of a fused attention node: its ``qkv_hidden_sizes``, else a
    third of its packed QKV weight (``Attention``) or bias (``MultiHeadAttention``)."""
    for attribute in node.attribute:
        if attribute.name == "qkv_hidden_sizes":
            return int(attribute.ints[0])
    index, axis = (1, 1) if node.op_type == "Attention" else (3, 0)
    init = optimizer.get_initializer(node.input[index]) if len(node.input) > index and node.input[index] else None
    return int(init.dims[axis]) // 3 if init is not None else None


class OrtBackend(Backend):
    name = "onnxruntime"
    package = "onnxruntime"
    install_hint = "pip install 'evalhub[onnx]'"
    precisions = ("fp32", "fp16", "int8")
    option_keys = frozenset({"quantization", "per_channel", "op_types", "provider", "threads", "spinning"})

    def build(self, ctx: BuildContext, folder: Path, precision: str) -> dict[str, Any]:
        import onnxruntime as ort

        provider, spinning = _provider(ctx.options), _spinning(ctx.options)
        _threads(ctx.options)                        # checked now, applied where the engine is loaded
        quant = _quantization(ctx.options) if precision == "int8" else None
        optimizer, used = optimized_graph(ctx, use_gpu=provider != "CPUExecutionProvider" and _gpu_available())
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "model.onnx"
        if quant:
            used |= _quantize(ctx, optimizer, target, quant)
        else:
            if precision == "fp16":
                optimizer.convert_float_to_float16(keep_io_types=True)
                used["fp16"] = {"keep_io_types": True, "note": "for CUDA/TensorRT; on the CPU it runs, slowly"}
            optimizer.save_model_to_file(str(target), use_external_data_format=False)
        return used | {"provider": provider or "auto", "threads": ctx.options.get("threads", "auto"),
                       "spinning": spinning, "session_level": SESSION_LEVEL, "onnxruntime": ort.__version__}

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> OrtPredictor:
        path = folder / "model.onnx"
        if not path.is_file():
            raise UserError(f"engine '{record.id}': {path} is missing; rebuild the engine")
        options, threads = record.options, _threads(record.options)
        settings = session_options(threads, options.get("session_level", SESSION_LEVEL), spinning=_spinning(options))
        providers = providers_for(_provider(options), record.precision, qdq=options.get("format") == "QDQ",
                                  model=path)
        session = open_session(path, settings, providers)
        provider = session.get_providers()[0]
        if record.precision == "fp16" and provider == "CPUExecutionProvider":
            log.warning("onnxruntime-fp16 runs on the CPU, with casts around most operators: slower than fp32")
        return OrtPredictor(session, tokenizer, labels, engine=f"onnxruntime-{record.precision} ({provider})",
                            max_length=record.max_length, provider=provider, threads=threads)


def _quantization(options: dict[str, Any]) -> dict[str, Any]:
    from hub.engines.ort_quantize import resolve

    mode = str(options.get("quantization", "dynamic")).lower()
    if mode not in QUANTIZATION_MODES:
        raise UserError(f"--option quantization={mode}: the onnxruntime backend takes quantization="
                        f"{' or '.join(QUANTIZATION_MODES)}")
    return resolve(options, mode)


def _quantize(ctx: BuildContext, optimizer: Any, target: Path, settings: dict[str, Any]) -> dict[str, Any]:
    from hub.engines.ort_quantize import quantize

    work = ctx.work_dir / "onnxruntime"
    work.mkdir(parents=True, exist_ok=True)
    optimizer.save_model_to_file(str(work / "optimized.onnx"), use_external_data_format=False)
    names = [i.name for i in optimizer.model.graph.input]
    return quantize(work / "optimized.onnx", target, settings, ctx.calibration_batches(), work, names)


def _gpu_available() -> bool:
    import onnxruntime as ort

    return any(p in ort.get_available_providers() for p in GPU_PROVIDERS)


def providers_for(forced: str | None, precision: str, *, qdq: bool = False, model: Path | None = None) -> list[Any]:
    """Execution providers in order of preference, the CPU last as the fallback. TensorRT
    caches the engines it builds: without that every load rebuilds. Its cache entries are
    named from the graph's names and shapes, not its weights, so two fine-tunes of one
    architecture would share an entry: each model file gets a cache folder of its own,
    named by its SHA-256."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if forced and forced not in available:
        raise UserError(f"the engine asks for {forced}, which this onnxruntime does not have "
                        f"(it has {', '.join(available)}); rebuild with --option provider=cpu or install "
                        "onnxruntime-gpu")
    wanted = [forced] if forced else [p for p in GPU_PROVIDERS if p in available]
    chosen: list[Any] = []
    for name in wanted:
        if name == "TensorrtExecutionProvider":
            cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "evalhub" / "ort-tensorrt"
            if model is not None:
                from hub.engines.tensorrt_plan import file_sha256

                cache = cache / file_sha256(model)[:16]
            chosen.append((name, {"trt_fp16_enable": precision == "fp16", "trt_int8_enable": qdq,
                                  "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}))
        elif name != "CPUExecutionProvider":
            chosen.append(name)
    return chosen + ["CPUExecutionProvider"]


def session_options(threads: int, level: str = SESSION_LEVEL, *, spinning: bool = False) -> Any:
    import onnxruntime as ort

    levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = levels[level]
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.log_severity_level = 3          # errors only: ORT's warnings about unused initializers are noise
    return opts


def _load_errors() -> tuple[type[BaseException], ...]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = ("Fail", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "InvalidArgument", "NotImplemented",
             "RuntimeException")
    return tuple(getattr(state, n) for n in names if hasattr(state, n)) + (OSError,)


def open_session(path: Path, settings: Any, providers: list[Any]) -> Any:
    """An ``InferenceSession`` over ``path``; an unreadable file is the user's to rebuild."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), settings, providers=providers)
    except _load_errors() as exc:
        first = first_line(exc)
        raise UserError(f"{path} is not a readable ONNX model ({first[:200]}); rebuild the engine") from None


class OrtPredictor(EnginePredictor):
    """An ``InferenceSession`` over padded numpy batches; ``provider`` is the one that runs."""

    def __init__(self, session: Any, tokenizer: Any, labels: list[str], *, engine: str, max_length: int,
                 provider: str, threads: int) -> None:
        super().__init__(tokenizer, labels, engine=engine, max_length=max_length)
        self.session = session
        self.provider, self.threads = provider, threads
        self.input_names = tuple(i.name for i in session.get_inputs())
        self.output_name = session.get_outputs()[0].name

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: inputs[name] for name in self.input_names}
        return self.session.run([self.output_name], feeds)[0].astype(np.float32, copy=False)
