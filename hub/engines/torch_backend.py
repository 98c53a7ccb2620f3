"""The torch engines: eager fp32 (the reference every other engine is compared with) and
bf16 with ``torch.compile``.

Written against PyTorch's documented API (``Module.to(torch.bfloat16)``,
``torch.compile(module, dynamic=True)``, ``torch.inference_mode``, ``torch.set_num_threads``,
``torch.backends.cpu.get_cpu_capability``) and transformers' ``save_pretrained`` /
``from_pretrained``, which write and read safetensors only: an engine folder holds no pickle.

Options (``evalhub build-engine --backend torch --option key=value``):

* ``compile`` (bf16 only, default True): wrap the model in ``torch.compile`` when it is loaded.
  Compilation is lazy (at load, never at build) because a compiled graph cannot be saved.
* ``dynamic`` (default True): compile with symbolic batch and sequence sizes, so that the
  varying shapes of real batches reuse one graph instead of recompiling per shape.
* ``threads`` (default: torch's own choice): intra-op threads, set when the engine is loaded.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.engines.base import Backend, BuildContext, EngineRecord
from hub.engines.predictor import EnginePredictor
from hub.errors import UserError, first_line

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
DEFAULTS: dict[str, Any] = {"compile": True, "dynamic": True, "threads": None}
# Shapes run once at load so that the first real request does not pay for compilation.
# Batch 1 is its own graph (dynamic shapes specialise sizes 0 and 1), batch 2 the general one.
WARMUP_SHAPES = ((1, 8), (2, 16))


def cpu_features() -> dict[str, Any]:
    """What this CPU offers for bf16: AMX tiles (Sapphire Rapids+) or AVX-512 BF16 (Zen 4)."""
    features: dict[str, Any] = {"cpu_capability": torch.backends.cpu.get_cpu_capability()}
    for name, probe in (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        check = getattr(torch.cpu, probe, None)   # private probes: absent in some torch builds
        features[name] = bool(check()) if check is not None else None
    return features


def resolve_options(user: dict[str, Any], precision: str) -> dict[str, Any]:
    """This backend's options over the defaults, checked. Other keys are left alone: ``auto``
    hands the same options to every backend."""
    options = {**DEFAULTS, **{k: v for k, v in user.items() if k in DEFAULTS}}
    for key in ("compile", "dynamic"):
        if not isinstance(options[key], bool):
            raise UserError(f"--option {key}={options[key]}: the torch backend takes {key}=true or {key}=false")
    threads = options["threads"]
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise UserError(f"--option threads={threads}: expected a whole number of threads >= 1")
    if precision == "fp32":
        options["compile"] = False    # fp32 is the eager reference, by definition uncompiled
    return options


def engine_label(precision: str, compiled: bool) -> str:
    return f"torch-{precision} (compiled)" if compiled else f"torch-{precision}"


class _Logits(torch.nn.Module):
    """The model's logits as fp32, whatever the model's dtype: the cast is part of the graph."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**inputs).logits.float()


def accepted_inputs(model: Any) -> tuple[str, ...]:
    import inspect

    params = inspect.signature(model.forward).parameters
    return tuple(n for n in EnginePredictor.input_names if n in params)


class TorchEnginePredictor(EnginePredictor):
    """Runs a (possibly compiled) torch module under ``torch.inference_mode``."""

    def __init__(self, module: torch.nn.Module, names: tuple[str, ...], tokenizer: Any, labels: list[str], *,
                 engine: str, max_length: int, threads: int | None = None) -> None:
        super().__init__(tokenizer, labels, engine=engine, max_length=max_length)
        self.module, self.names, self.threads = module, names, threads

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        ids = inputs["input_ids"]
        # Always the same keyword set, so a compiled graph is never re-traced for a missing input;
        # the fillers are what the model assumes when the input is absent.
        fillers = {"attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        tensors = {n: torch.from_numpy(np.ascontiguousarray(inputs.get(n, fillers.get(n)))) for n in self.names}
        with torch.inference_mode():
            return self.module(**tensors).numpy()

    def warm_up(self, shapes=WARMUP_SHAPES) -> float:
        """Run dummy batches of ``shapes`` (batch, sequence); return the seconds it took."""
        start = time.perf_counter()
        for batch, seq in shapes:
            seq = min(seq, self.max_length)
            self.run({"input_ids": np.full((batch, seq), 1, dtype=np.int64)})   # any valid id will do
        return time.perf_counter() - start


class TorchBackend(Backend):
    name = "torch"
    package = "torch"
    precisions = ("fp32", "bf16")
    install_hint = "pip install torch"
    option_keys = frozenset(DEFAULTS)

    def build(self, ctx: BuildContext, folder: Path, precision: str) -> dict[str, Any]:
        options = resolve_options(ctx.options, precision)
        # A copy: the context's fp32 model is shared with the other backends of the build.
        model = copy.deepcopy(ctx.model).to(DTYPES[precision]).eval()
        model.save_pretrained(folder / "model")      # safetensors (transformers 5 writes nothing else)
        return {**options, "dtype": str(DTYPES[precision]).removeprefix("torch."), "torch": torch.__version__,
                "weights_sha256": weights_sha256(folder / "model"), **cpu_features()}

    def load(self, folder: Path, record: EngineRecord, tokenizer: Any, labels: list[str]) -> TorchEnginePredictor:
        options = resolve_options({k: record.options[k] for k in DEFAULTS if k in record.options},
                                  record.precision)
        if options["threads"]:
            torch.set_num_threads(options["threads"])
        model = load_weights(Path(folder) / "model", DTYPES[record.precision], record.options.get("weights_sha256"))
        names = accepted_inputs(model)
        module: torch.nn.Module = _Logits(model).eval()
        if options["compile"]:
            module = torch.compile(module, dynamic=options["dynamic"])
        predictor = TorchEnginePredictor(module, names, tokenizer, labels, max_length=record.max_length,
                                         engine=engine_label(record.precision, options["compile"]),
                                         threads=options["threads"])
        if options["compile"]:
            log.info("%s: compiled and warmed up in %.1f s", predictor.engine, _warm_up(predictor))
        return predictor

    def machine(self) -> dict[str, Any]:
        return {**super().machine(), "torch": torch.__version__, **cpu_features()}


def _warm_up(predictor: TorchEnginePredictor) -> float:
    """Compile now (torch.compile is lazy); a machine that cannot compile is told what to do."""
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        return predictor.warm_up()
    except BackendCompilerFailed as exc:   # e.g. no C++ compiler for inductor's CPU kernels
        first = first_line(exc)
        raise UserError(f"{predictor.engine}: torch.compile failed on this machine ({first}); "
                        "build the engine with --option compile=false") from None


def load_weights(path: Path, dtype: torch.dtype, sha256: str | None = None) -> torch.nn.Module:
    """The saved classifier in ``dtype``; a missing or damaged engine folder is a UserError."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification

    from hub.plugins import register_model_type

    if not (path / "config.json").is_file():
        raise UserError(f"torch engine folder {path.parent} has no model/config.json; rebuild the engine")
    if sha256 and weights_sha256(path) != sha256:
        raise UserError(f"torch engine weights in {path} do not match the checksum recorded at build time "
                        "(the file is damaged or was replaced); rebuild the engine")
    register_model_type(path)   # an architecture a plugin defines (a pruned BERT)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, use_safetensors=True)
    except (SafetensorError, OSError, ValueError) as exc:
        first = first_line(exc)
        raise UserError(f"torch engine weights in {path} cannot be read ({first}); rebuild the engine") from None
    return model.eval()


def weights_sha256(path: Path) -> str:
    """One digest over the folder's safetensors files, in name order."""
    digest = hashlib.sha256()
    for file in sorted(path.glob("*.safetensors")):
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
