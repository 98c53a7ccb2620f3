"""TensorRT plans without a GPU: options, optimization-profile shapes, fitting inputs to a
profile, cache keys, plan metadata and its checks, and the choice of layers kept in fp32.

Pure functions, tested on any machine; the GPU code that uses them is in
:mod:`hub.engines.tensorrt_backend`. Nothing here imports TensorRT.
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

from hub.errors import UserError

PLAN, META = "engine.plan", "plan.json"
# Profile bounds; max_seq defaults to the build's max_length. "opt" is the shape TensorRT tunes
# its kernels for: 8 x 128 is a typical serving batch. Defaults are clamped into what the user sets.
SHAPE_DEFAULTS = {"min_batch": 1, "opt_batch": 8, "max_batch": 32, "min_seq": 8, "opt_seq": 128}
OPTION_DEFAULTS: dict[str, Any] = {
    **dict.fromkeys(("min_batch", "opt_batch", "max_batch", "min_seq", "opt_seq", "max_seq")),  # None: derived
    "workspace_mb": None,         # None: TensorRT's default (the GPU's memory)
    "cache_dir": None,            # timing and calibration caches; None: $EVALHUB_HOME/cache/tensorrt
    "calibration_size": 256,      # most texts int8 calibration uses (the build context holds 128: engine.json
                                  # records the number used as calibration_texts)
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
        hi = positive_int(user, f"max_{axis}", default_max)
        lo = positive_int(user, f"min_{axis}", min(SHAPE_DEFAULTS[f"min_{axis}"], hi))
        opt = positive_int(user, f"opt_{axis}", max(lo, min(SHAPE_DEFAULTS[f"opt_{axis}"], hi)))
        if not lo <= opt <= hi:
            raise UserError(f"--option min_{axis}={lo}, opt_{axis}={opt}, max_{axis}={hi}: the tensorrt backend "
                            f"needs min_{axis} <= opt_{axis} <= max_{axis}; change them so that they are in order")
        values |= {f"min_{axis}": lo, f"opt_{axis}": opt, f"max_{axis}": hi}
    if max_positions and values["max_seq"] > max_positions:
        raise UserError(f"--option max_seq={values['max_seq']}: the model has {max_positions} positions; "
                        f"set max_seq to at most {max_positions}")
    return ProfileShapes(**values)


def positive_int(user: dict[str, Any], key: str, default: int | None) -> int | None:
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
