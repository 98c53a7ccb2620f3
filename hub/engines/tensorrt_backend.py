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

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.base import Backend, BuildContext, EngineRecord
from hub.engines.predictor import EnginePredictor
from hub.engines.tensorrt_plan import OPTION_DEFAULTS
from hub.engines.tensorrt_plan import (cache_key, check_plan_file, check_plan_metadata,
                                        file_sha256, fp32_layers, is_tensorrt_available, PLAN, plan_metadata,
                                        profile_batches, profile_shapes, ProfileShapes, read_plan_metadata,
                                        positive_int, resolve_options, timing_cache_path, write_plan_metadata)
from hub.errors import UserError
from hub.fsutil import write_bytes_atomic  # builds side by side share cache files: replace them whole

INSTALL = 'pip install "tensorrt>=10,<11" --extra-index-url https://pypi.nvidia.com'
# trt.DataType member names -> numpy/torch dtype names, for the I/O tensors of a BERT plan.
TORCH_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32", "INT64": "int64",
                "BOOL": "bool"}


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
    option_keys = frozenset(OPTION_DEFAULTS)
    install_hint = (f"TensorRT's wheels come from NVIDIA's package index, not PyPI: {INSTALL} "
                    "(for a CUDA 12 build of torch, tensorrt-cu12 in place of tensorrt), "
                    "on a machine with an NVIDIA GPU")

    def is_available(self) -> bool:
        return is_tensorrt_available()

    def runs_here(self) -> bool:
        import torch

        return torch.cuda.is_available()

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
            options[key] = positive_int(options, key, None)
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
        # what calibration really used: the build context holds at most CALIBRATION_EXAMPLES training texts
        used_texts = min(options["calibration_size"], len(ctx.calibration_texts)) if batches else 0
        return {**options, **asdict(shapes), "calibration_texts": used_texts,
                "cache_dir": str(cache_dir), "timing_cache": str(timing),
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
