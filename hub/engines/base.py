"""The engine contract: a backend builds an inference engine from a variant and loads it
as a predictor.

An engine is a folder of files (an ONNX graph, an OpenVINO IR, a TensorRT plan, a
compiled torch checkpoint…) plus ``engine.json`` (an :class:`EngineRecord`). Backends
are registered by name in ``hub.registries.ENGINES`` and imported lazily, so that
``import hub`` never imports onnxruntime, OpenVINO or TensorRT.
"""

from __future__ import annotations

import importlib.util
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.errors import UserError

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")   # every backend's, together: each builds some of them


@dataclass
class EngineRecord:
    """What was built, how, on which machine, and how it measured."""

    id: str
    variant_id: str
    backend: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)     # backend choices actually used
    machine: dict[str, Any] = field(default_factory=dict)     # cpu/gpu, provider, runtime version
    max_length: int = 128
    parity: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    auto: dict[str, Any] | None = None                        # why `auto` chose this engine
    created_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        return f"{self.backend}-{self.precision}"


@dataclass
class BuildContext:
    """Everything a backend needs to build: the merged fp32 torch model and its data."""

    model: Any                       # transformers model, eval mode, fp32, on CPU
    tokenizer: Any
    labels: list[str]
    max_length: int
    calibration_texts: list[str]     # from the training split, for static int8 calibration
    work_dir: Path                   # scratch space shared by the backends of one build
    options: dict[str, Any] = field(default_factory=dict)
    _onnx: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)   # what a task computes once per build (reference explanations)

    def onnx_model(self) -> tuple[Path, dict]:
        """The fp32 ONNX export of the model (exported once per build, then shared)."""
        if "path" not in self._onnx:
            from hub.engines.onnx_export import export_onnx

            path = self.work_dir / "model.onnx"
            self._onnx["meta"] = export_onnx(self.model, self.tokenizer, path, max_length=self.max_length)
            self._onnx["path"] = path
        return self._onnx["path"], self._onnx["meta"]

    def calibration_batches(self, batch_size: int = 8, limit: int = 128) -> list[dict[str, Any]]:
        """Tokenised numpy batches of calibration texts (padded to the longest in each batch)."""
        texts = self.calibration_texts[:limit]
        batches = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], truncation=True, max_length=self.max_length,
                                 padding=True, return_tensors="np")
            batches.append({k: v.astype("int64") for k, v in enc.items()})
        return batches


class Backend:
    """Base class of engine backends; subclasses set the class attributes and two methods."""

    name: str = ""
    precisions: tuple[str, ...] = ()
    package: str = ""                # import name that must be importable
    install_hint: str = ""           # how to install it, for the error message
    # Options a batch workload (an evaluation run) loads an engine with: the same files,
    # scheduled for throughput instead of single-request latency.
    bulk_options: dict[str, Any] = {}
    # ``--option`` keys the backend reads (its module docstring says what each does); a key no
    # backend reads is refused, so a misspelling does not quietly build something else
    option_keys: frozenset[str] = frozenset()

    def is_available(self) -> bool:
        return bool(self.package) and importlib.util.find_spec(self.package) is not None

    def runs_here(self) -> bool:
        """Whether this machine has what the backend's engines run on (``auto`` skips it when not)."""
        return True

    def check(self, precision: str) -> None:
        """Raise UserError when the backend is missing or cannot build ``precision``."""
        if not self.is_available():
            raise UserError(f"backend '{self.name}' needs {self.package}, which is not installed; {self.install_hint}")
        if precision not in self.precisions:
            raise UserError(f"backend '{self.name}' builds {', '.join(self.precisions)}, not '{precision}'")

    def build(self, ctx: BuildContext, folder: Path, precision: str) -> dict[str, Any]:
        """Write the engine's files into ``folder``; return the options actually used."""
        raise NotImplementedError

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> Any:
        """A predictor (``hub.engines.predictor.EnginePredictor``) over the files in ``folder``."""
        raise NotImplementedError

    def machine(self) -> dict[str, Any]:
        """The machine the engine is built for; `load` refuses a mismatch where it matters."""
        return {"machine": platform.machine(), "processor": platform.processor() or platform.machine()}
