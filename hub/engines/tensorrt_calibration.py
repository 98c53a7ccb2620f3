"""int8 calibration for TensorRT: fixed-shape batches from the training split, and the calibrator.

Written against TensorRT 10's documented Python API for implicit quantization:
``tensorrt.IInt8EntropyCalibrator2`` (``get_batch_size``, ``get_batch(names)`` returning device
pointers, ``read_calibration_cache``/``write_calibration_cache``) with
``IBuilderConfig.int8_calibrator`` and ``set_calibration_profile``. Deprecated since TensorRT
10.1 and removed in 11 (replaced by explicit Q/DQ quantization), hence the 10.x requirement
for int8 in :mod:`hub.engines.tensorrt_backend`.

TensorRT calibrates with the *opt* shape of the calibration profile, so every batch must have
exactly that shape: :func:`fixed_shape_batches` (pure numpy, tested without a GPU) pads or trims
``BuildContext.calibration_batches()`` to it. Only :func:`make_calibrator` touches TensorRT and
CUDA; it imports them when called.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hub.fsutil import write_bytes_atomic


def fixed_shape_batches(batches: Sequence[dict[str, np.ndarray]], names: Sequence[str], batch_size: int,
                        seq_len: int, pad_ids: dict[str, int]) -> list[dict[str, np.ndarray]]:
    """Every row of ``batches`` regrouped into int64 arrays of exactly ``(batch_size, seq_len)``.

    Sequences are right-padded with ``pad_ids[name]`` (0 when absent) or cut at ``seq_len``; the
    last batch is filled up with rows from the start (repeating real text rather than feeding
    all-padding rows, which would skew the activation ranges).
    """
    if not batches:
        return []
    rows = {name: _concat_padded([b[name] for b in batches], seq_len, pad_ids.get(name, 0))
            for name in names if name in batches[0]}
    total = len(next(iter(rows.values())))
    order = np.arange(-(-total // batch_size) * batch_size) % total     # ceil to whole batches, wrap
    return [{name: np.ascontiguousarray(arr[order[i:i + batch_size]]) for name, arr in rows.items()}
            for i in range(0, len(order), batch_size)]


def _concat_padded(arrays: list[np.ndarray], seq_len: int, pad: int) -> np.ndarray:
    out = []
    for arr in arrays:
        arr = np.asarray(arr, dtype=np.int64)[:, :seq_len]
        if arr.shape[1] < seq_len:
            arr = np.pad(arr, ((0, 0), (0, seq_len - arr.shape[1])), constant_values=pad)
        out.append(arr)
    return np.concatenate(out, axis=0)


def prepare_calibration(ctx: Any, names: Sequence[str], shapes: Any, limit: int) -> tuple[list, int]:
    """Calibration batches of the profile's opt batch size, and their sequence length, from
    ``ctx.calibration_batches()`` (texts of the training split)."""
    from hub.errors import UserError

    raw = ctx.calibration_batches(batch_size=shapes.opt_batch, limit=limit)
    if not raw:
        raise UserError("tensorrt int8 needs calibration texts from the training split, and there are none; "
                        "build fp16 instead, or give the variant training data")
    seq_len = calibration_seq_len(raw, shapes.min_seq, shapes.max_seq)
    pad_ids = {"input_ids": ctx.tokenizer.pad_token_id or 0}
    return fixed_shape_batches(raw, names, shapes.opt_batch, seq_len, pad_ids), seq_len


def calibration_seq_len(batches: Sequence[dict[str, np.ndarray]], min_seq: int, max_seq: int) -> int:
    """The calibration sequence length: the longest calibration text, within the profile's range."""
    longest = max((b["input_ids"].shape[1] for b in batches), default=min_seq)
    return max(min_seq, min(longest, max_seq))


def batches_digest(batches: Sequence[dict[str, np.ndarray]]) -> str:
    """A digest of the calibration data, so that a calibration cache is reused only for the same data."""
    digest = hashlib.sha256()
    for batch in batches:
        for name in sorted(batch):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(batch[name]).tobytes())
    return digest.hexdigest()[:16]


def make_calibrator(batches: list[dict[str, np.ndarray]], dtypes: dict[str, Any], cache_path: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` from CUDA memory (GPU code)."""
    import tensorrt as trt
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)   # pybind11 trampolines need the explicit call
            self.index = 0
            self.device: dict[str, torch.Tensor] = {}     # kept alive until TensorRT has read them

        def get_batch_size(self) -> int:
            return len(next(iter(batches[0].values())))

        def get_batch(self, names: list[str], *_: Any) -> list[int] | None:
            if self.index >= len(batches):
                return None
            batch, self.index = batches[self.index], self.index + 1
            self.device = {n: torch.from_numpy(batch[n].astype(dtypes[n])).cuda() for n in names}
            return [self.device[n].data_ptr() for n in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(cache_path, bytes(cache))   # a cut-short write must not be read back

    return EntropyCalibrator()
