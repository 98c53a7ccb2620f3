"""TensorRT engines from the shared ONNX export: fp32, fp16 and int8 (calibrated) plans.

Written against TensorRT 10's documented Python API: ``trt.Builder``,
``create_network(0)`` (explicit batch is the only mode in 10), ``trt.OnnxParser``,
``IBuilderConfig`` flags (``FP16``, ``INT8``, ``OBEY_PRECISION_CONSTRAINTS``), one optimization
profile over batch and sequence length, a timing cache (``create_timing_cache`` /
``set_timing_cache``), ``build_serialized_network``; at run time ``trt.Runtime``,
``deserialize_cuda_engine``, ``set_input_shape``, ``set_tensor_address`` on torch CUDA tensors
and ``execute_async_v3``. TensorRT 11 removed the weak-typing flags and the int8 calibrator
(fp16/int8 there need ModelOpt-converted ONNX), so fp16 and int8 need TensorRT 10.x; fp32
builds with 10 or later.

Under fp16 the LayerNorm and Softmax layers stay in fp32 (the known BERT fp16 overflow; TensorRT
warns about it itself). A plan only runs on the GPU model and TensorRT version it was built
with: ``plan.json`` records both and ``load`` refuses a mismatch with a clear message.

Everything that needs no GPU is a pure function tested on CPU (options and profile shapes,
fitting inputs to the profile, the cache key, plan metadata, the fp32 layer selection). The GPU
code is confined to :func:`build_plan`, :func:`deserialize_plan` and
:meth:`TensorRTEnginePredictor.execute`.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hub.engines.base import Backend, BuildContext, EngineRecord
from hub.engines.predictor import EnginePredictor
from hub.errors import UserError
from hub.fsutil import write_bytes_atomic  # builds side by side share cache files: replace them whole

INSTALL = 'pip install "tensorrt>=10,<11" --extra-index-url https://pypi.nvidia.com'
PLAN, META = "engine.plan", "plan.json"
# trt.DataType member names -> numpy/torch dtype names, for the I/O tensors of a BERT plan.
TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64",
                "BOOL": "bool"}
# Profile bounds; max_seq defaults to the build's max_length. "opt" is the shape TensorRT tunes
# its kernels for: 8 x 128 is a typical serving batch. Defaults are clamped into what the user sets.
SHAPE_DEFAULTS = {"min_batch": 1, "opt_batch": 8, "max_batch": 32, "min_seq": 8, "opt_seq": 128}
OPTION_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(("min_batch", "opt_batch", "max_batch", "min_seq", "opt_seq", "max_seq")),  # None: derived
    "workspace_mb": None,         # None: TensorRT's default (the GPU's memory)
    "cache_dir": None,            # timing and calibration caches; None: $EVALHUB_HOME/cache/tensorrt
    "calibration_size": 256,      # texts used for int8 calibration
}


@functools.lru_cache(maxsize=1)
def is_tensorrt_available() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


# --- options and profile shapes (pure) ---------------------------------------------------------

@dataclass(frozen=True)
class ProfileShapes:
    """The optimization profile: every input is (batch, sequence) within these bounds."""

    min_batch: int
    opt_batch: int
    max_batch: int
    min_seq: int
    opt_seq: int
    max_seq: int

    def for_input(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (self.min_batch, self.min_seq), (self.opt_batch, self.opt_seq), (self.max_batch, self.max_seq)


def resolve_options(user: dict[str, Any]) -> dict[str, Any]:
    """This backend's options over the defaults (other keys are for other backends: ``auto``
    hands the same options to all of them)."""
    return {**OPTION_DEFAULTS, **{k: v for k, v in user.items() if k in OPTION_DEFAULTS}}


def profile_shapes(user: dict[str, Any], max_length: int, max_positions: int | None = None) -> ProfileShapes:
    """Profile shapes from the options: defaults 1/8/32 and 8/128/max_length, clamped into the
    range the user set; user values checked (positive integers, min <= opt <= max, max_seq within
    the model's positions)."""
    values: dict[str, int] = {}
    for axis, default_max in (("batch", SHAPE_DEFAULTS["max_batch"]), ("seq", max_length)):
        hi = _positive_int(user, f"max_{axis}", default_max)
        lo = _positive_int(user, f"min_{axis}", min(SHAPE_DEFAULTS[f"min_{axis}"], hi))
        opt = _positive_int(user, f"opt_{axis}", max(lo, min(SHAPE_DEFAULTS[f"opt_{axis}"], hi)))
        if not lo <= opt <= hi:
            raise UserError(f"--option min_{axis}={lo}, opt_{axis}={opt}, max_{axis}={hi}: the tensorrt backend "
                            f"needs min_{axis} <= opt_{axis} <= max_{axis}; change them so that they are in order")
        values |= {f"min_{axis}": lo, f"opt_{axis}": opt, f"max_{axis}": hi}
    if max_positions and values["max_seq"] > max_positions:
        raise UserError(f"--option max_seq={values['max_seq']}: the model has {max_positions} positions; "
                        f"set max_seq to at most {max_positions}")
    return ProfileShapes(**values)


def _positive_int(user: dict[str, Any], key: str, default: int | None) -> int | None:
    value = user.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"--option {key}={value}: expected a whole number >= 1")
    return value


def fit_to_profile(inputs: dict[str, np.ndarray], shapes: ProfileShapes,
                   pad_ids: dict[str, int]) -> tuple[dict[str, np.ndarray], int]:
    """One batch of at most max_batch rows made acceptable to the profile, and how many rows are
    real: sequences longer than max_seq are cut (never a crash), shorter than min_seq padded, and
    a batch below min_batch repeats its first row."""
    rows = len(next(iter(inputs.values())))
    fitted = {}
    for name, arr in inputs.items():
        arr = np.asarray(arr)[:, :shapes.max_seq]
        if arr.shape[1] < shapes.min_seq:
            arr = np.pad(arr, ((0, 0), (0, shapes.min_seq - arr.shape[1])), constant_values=pad_ids.get(name, 0))
        if rows < shapes.min_batch:
            arr = np.concatenate([arr, np.repeat(arr[:1], shapes.min_batch - rows, axis=0)])
        fitted[name] = np.ascontiguousarray(arr)
    return fitted, rows


def profile_batches(inputs: dict[str, np.ndarray], shapes: ProfileShapes,
                    pad_ids: dict[str, int]) -> list[tuple[dict[str, np.ndarray], int]]:
    """``inputs`` split into batches of at most max_batch rows, each fitted to the profile."""
    rows = len(next(iter(inputs.values())))
    return [fit_to_profile({k: v[part] for k, v in inputs.items()}, shapes, pad_ids)
            for part in row_chunks(rows, shapes.max_batch)]


def row_chunks(rows: int, max_batch: int) -> list[slice]:
    return [slice(i, min(i + max_batch, rows)) for i in range(0, rows, max_batch)]


# --- cache keys and plan metadata (pure) -------------------------------------------------------

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_key(gpu: str, compute_capability: str, tensorrt: str, precision: str, onnx_sha256: str,
              extra: str = "") -> str:
    """A file-name-safe key for what a cached artefact depends on (``extra``: e.g. calibration data)."""
    text = "|".join((gpu, compute_capability, tensorrt, precision, onnx_sha256, extra))
    return f"{_slug(gpu)}-sm{compute_capability.replace('.', '')}-trt{tensorrt}-{precision}-" \
           f"{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def timing_cache_path(cache_dir: Path, gpu: str, compute_capability: str, tensorrt: str) -> Path:
    """Timing caches hold kernel timings: valid for one GPU model and TensorRT version, any model."""
    return Path(cache_dir) / f"timing-{_slug(gpu)}-sm{compute_capability.replace('.', '')}-trt{tensorrt}.cache"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def plan_metadata(device: dict[str, str], precision: str, shapes: ProfileShapes, inputs: Sequence[str],
                  **extra: Any) -> dict[str, Any]:
    return {"format": 1, "gpu": device["gpu"], "compute_capability": device["compute_capability"],
            "tensorrt": device["tensorrt"], "precision": precision, "profile": asdict(shapes),
            "inputs": list(inputs), **extra}


def write_plan_metadata(folder: Path, meta: dict[str, Any]) -> None:
    (Path(folder) / META).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")


def read_plan_metadata(folder: Path) -> dict[str, Any]:
    path = Path(folder) / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        ProfileShapes(**meta["profile"])
        return meta
    except FileNotFoundError:
        raise UserError(f"TensorRT engine folder {folder} has no {META}; rebuild the engine") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is damaged ({type(exc).__name__}: {exc}); rebuild the engine") from None


def check_plan_metadata(meta: dict[str, Any], current: dict[str, str], folder: Path | str = "") -> None:
    """Refuse a plan built for another GPU model or TensorRT version: TensorRT would reject it or,
    worse, run kernels tuned for another chip."""
    where = f"TensorRT engine {folder}".strip()
    if meta["gpu"] != current["gpu"] or meta["compute_capability"] != current["compute_capability"]:
        raise UserError(f"{where} was built for {meta['gpu']} (compute capability {meta['compute_capability']}) "
                        f"but this machine has {current['gpu']} (compute capability "
                        f"{current['compute_capability']}); plans are tied to the GPU model, so rebuild "
                        "the engine on this machine")
    if meta["tensorrt"] != current["tensorrt"]:
        raise UserError(f"{where} was built with TensorRT {meta['tensorrt']} but TensorRT {current['tensorrt']} "
                        f"is installed; plans are tied to the exact TensorRT version, so rebuild the engine or "
                        f"install tensorrt=={meta['tensorrt']}")


def check_plan_file(folder: Path, meta: dict[str, Any]) -> bytes:
    """The plan's bytes, after checking them against the digest written at build time."""
    path = Path(folder) / PLAN
    if not path.is_file():
        raise UserError(f"TensorRT engine folder {folder} has no {PLAN}; rebuild the engine")
    data = path.read_bytes()
    if meta.get("plan_sha256") and hashlib.sha256(data).hexdigest() != meta["plan_sha256"]:
        raise UserError(f"{path} does not match the digest in {META} (damaged or replaced); rebuild the engine")
    return data


# --- which layers stay fp32 under fp16 (pure) --------------------------------------------------

_LAYERNORM_SCOPE = re.compile(r"layer_?norm", re.IGNORECASE)
_DECOMPOSED = {"REDUCE": "R", "ELEMENTWISE": "E", "UNARY": "U"}
_PASS_THROUGH = {"CONSTANT", "SHUFFLE", "IDENTITY"}    # between the ops of a LayerNorm, not part of it
# mean, sub, (pow), mean, (add eps), sqrt, div, (mul gamma), (add beta): LayerNorm as exporters
# before opset 17 write it.
_REDUCE_LAYERNORM = re.compile(r"RE{1,2}RE?UE{1,3}")


def fp32_layers(layers: Sequence[tuple[str, str]]) -> list[int]:
    """Indices of the layers to keep in fp32, from (layer name, ``trt.LayerType`` name) pairs:
    normalization and softmax layers, and LayerNorms decomposed into reduce/elementwise/unary
    layers (recognised by their name scope or by the op sequence)."""
    keep = {i for i, (_, kind) in enumerate(layers) if kind in ("NORMALIZATION", "SOFTMAX")}
    keep |= {i for i, (name, kind) in enumerate(layers) if kind in _DECOMPOSED and _LAYERNORM_SCOPE.search(name)}
    compact = [(i, _DECOMPOSED.get(kind, "x")) for i, (_, kind) in enumerate(layers) if kind not in _PASS_THROUGH]
    letters = "".join(letter for _, letter in compact)
    for match in _REDUCE_LAYERNORM.finditer(letters):
        keep |= {compact[j][0] for j in range(match.start(), match.end())}
    return sorted(keep)


# --- GPU code: TensorRT and CUDA from here on --------------------------------------------------

def current_device() -> dict[str, str]:
    import tensorrt as trt
    import torch

    major, minor = torch.cuda.get_device_capability()
    return {"gpu": torch.cuda.get_device_name(), "compute_capability": f"{major}.{minor}",
            "tensorrt": trt.__version__, "cuda": str(torch.version.cuda)}


def build_plan(onnx_path: Path, shapes: ProfileShapes, precision: str, *, timing_cache: Path,
               calibration: tuple[list, Path, int] | None = None, workspace_mb: int | None = None) -> tuple[bytes, int]:
    """Build a serialized plan; return it and how many layers were pinned to fp32."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise UserError(f"TensorRT cannot parse {onnx_path.name}: {errors[0] if errors else 'unknown error'}")
    config = builder.create_builder_config()
    if workspace_mb:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    config.add_optimization_profile(_profile(builder, network, shapes))
    pinned = 0
    if precision in ("fp16", "int8"):      # int8 with fp16 for the layers int8 does not cover
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        pinned = _pin_fp32(network)
    if precision == "int8":
        _set_calibrator(builder, network, config, shapes, calibration)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"TensorRT could not build a {precision} engine from {onnx_path}; see its log above")
    write_bytes_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return bytes(plan), pinned


def _profile(builder: Any, network: Any, shapes: ProfileShapes, opt_seq: int | None = None) -> Any:
    profile = builder.create_optimization_profile()
    lo, opt, hi = shapes.for_input()
    opt = (opt[0], opt_seq or opt[1])
    for i in range(network.num_inputs):
        profile.set_shape(network.get_input(i).name, lo, opt, hi)
    return profile


def _pin_fp32(network: Any) -> int:
    import tensorrt as trt

    layers = [network.get_layer(i) for i in range(network.num_layers)]
    chosen = fp32_layers([(layer.name, layer.type.name) for layer in layers])
    for i in chosen:
        layer = layers[i]
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.float32, trt.float16):
                layer.set_output_type(j, trt.float32)
    return len(chosen)


def _set_calibrator(builder: Any, network: Any, config: Any, shapes: ProfileShapes,
                    calibration: tuple[list, Path, int] | None) -> None:
    import tensorrt as trt

    from hub.engines.tensorrt_calibration import make_calibrator

    batches, cache_path, seq_len = calibration          # the build always prepares them for int8
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    dtypes = {t.name: np.dtype(TORCH_DTYPES[t.dtype.name]) for t in inputs}      # int64 (or int32) ids
    config.set_flag(trt.BuilderFlag.INT8)
    config.int8_calibrator = make_calibrator(batches, dtypes, cache_path)
    config.set_calibration_profile(_profile(builder, network, shapes, opt_seq=seq_len))


def deserialize_plan(data: bytes, path: Path) -> tuple[Any, Any]:
    import tensorrt as trt

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise UserError(f"TensorRT cannot deserialize {path} (damaged, or built by another TensorRT); "
                        "rebuild the engine")
    return runtime, engine


class TensorRTEnginePredictor(EnginePredictor):
    """Runs a deserialized plan on torch CUDA tensors, one profile-sized batch at a time."""

    def __init__(self, runtime: Any, engine: Any, shapes: ProfileShapes, tokenizer: Any, labels: list[str], *,
                 label: str, max_length: int) -> None:
        import tensorrt as trt
        import torch

        super().__init__(tokenizer, labels, engine=label, max_length=min(max_length, shapes.max_seq),
                         batch_size=min(32, shapes.max_batch))
        self.runtime, self.plan, self.shapes = runtime, engine, shapes
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.output = next(n for n in names if n not in self.inputs)
        self.dtypes = {n: getattr(torch, TORCH_DTYPES[engine.get_tensor_dtype(n).name]) for n in names}
        self.pad_ids = {"input_ids": tokenizer.pad_token_id or 0}
        self.stream = torch.cuda.Stream()

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        batches = profile_batches({n: inputs[n] for n in self.inputs}, self.shapes, self.pad_ids)
        return np.concatenate([self.execute(arrays)[:rows] for arrays, rows in batches]).astype(np.float32)

    def execute(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        with torch.cuda.stream(self.stream):
            device = {n: torch.from_numpy(arrays[n]).to("cuda", self.dtypes[n], non_blocking=True) for n in self.inputs}
            for name, tensor in device.items():
                self.context.set_input_shape(name, tuple(tensor.shape))
                self.context.set_tensor_address(name, tensor.data_ptr())
            out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=self.dtypes[self.output],
                              device="cuda")
            self.context.set_tensor_address(self.output, out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError(f"{self.engine}: TensorRT execution failed")
            result = out.float().cpu()          # synchronises the stream
        return result.numpy()


# --- the backend ------------------------------------------------------------------------------

class TensorRTBackend(Backend):
    name = "tensorrt"
    package = "tensorrt"
    precisions = ("fp32", "fp16", "int8")
    install_hint = (f"TensorRT's wheels come from NVIDIA's package index, not PyPI: {INSTALL} "
                    "(for a CUDA 12 build of torch, tensorrt-cu12 in place of tensorrt), "
                    "on a machine with an NVIDIA GPU")

    def is_available(self) -> bool:
        return is_tensorrt_available()

    def check(self, precision: str) -> None:
        super().check(precision)
        import tensorrt as trt
        import torch

        check_versions(trt.__version__, precision, torch.cuda.is_available())

    def machine(self) -> dict[str, Any]:
        if not self.is_available():
            return super().machine()
        import torch

        return {**super().machine(), **(current_device() if torch.cuda.is_available() else {})}

    def build(self, ctx: BuildContext, folder: Path, precision: str) -> dict[str, Any]:
        from hub.engines.tensorrt_calibration import batches_digest, prepare_calibration

        options = resolve_options(ctx.options)
        for key in ("calibration_size", "workspace_mb"):
            options[key] = _positive_int(options, key, None)
        shapes = profile_shapes(options, ctx.max_length, getattr(ctx.model.config, "max_position_embeddings", None))
        onnx_path, export = ctx.onnx_model()
        device, onnx_sha = current_device(), file_sha256(onnx_path)
        batches, calib_seq = (prepare_calibration(ctx, export["inputs"], shapes, options["calibration_size"])
                              if precision == "int8" else ([], 0))
        key = cache_key(device["gpu"], device["compute_capability"], device["tensorrt"], precision, onnx_sha,
                        batches_digest(batches) if batches else "")
        cache_dir = Path(options["cache_dir"] or _default_cache_dir())
        timing = timing_cache_path(cache_dir, device["gpu"], device["compute_capability"], device["tensorrt"])
        calibration = (batches, cache_dir / f"calibration-{key}.cache", calib_seq) if batches else None
        plan, pinned = build_plan(onnx_path, shapes, precision, timing_cache=timing, calibration=calibration,
                                  workspace_mb=options["workspace_mb"])
        (folder / PLAN).write_bytes(plan)
        write_plan_metadata(folder, plan_metadata(device, precision, shapes, export["inputs"], cache_key=key,
                                                  onnx_sha256=onnx_sha, plan_sha256=hashlib.sha256(plan).hexdigest(),
                                                  fp32_layers=pinned, cuda=device["cuda"]))
        return {**options, **asdict(shapes), "cache_dir": str(cache_dir), "timing_cache": str(timing),
                "cache_key": key, "fp32_layers": pinned, "tensorrt": device["tensorrt"]}

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> TensorRTEnginePredictor:
        meta = read_plan_metadata(folder)
        self.check(meta["precision"])
        check_plan_metadata(meta, current_device(), folder)
        data = check_plan_file(folder, meta)
        runtime, engine = deserialize_plan(data, Path(folder) / PLAN)
        return TensorRTEnginePredictor(runtime, engine, ProfileShapes(**meta["profile"]), tokenizer, labels,
                                       label=f"tensorrt-{meta['precision']}", max_length=record.max_length)


def check_versions(version: str, precision: str, has_cuda: bool) -> None:
    """TensorRT 10.x for fp16/int8 (11 removed the flags they are built with), 10+ for fp32, and a GPU."""
    major = int(version.split(".")[0])
    if major < 10 or (major >= 11 and precision != "fp32"):
        need = "10.x" if precision != "fp32" else "10 or later"
        raise UserError(f"backend 'tensorrt' builds {precision} with TensorRT {need}, but {version} is installed; "
                        f"install it with {INSTALL}")
    if not has_cuda:
        raise UserError("backend 'tensorrt' needs an NVIDIA GPU and a CUDA build of torch, and "
                        "torch.cuda.is_available() is False here; build TensorRT engines on a GPU machine")


def _default_cache_dir() -> Path:
    from hub.store import default_home

    return default_home() / "cache" / "tensorrt"
