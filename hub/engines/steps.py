"""The steps of an engine build that ``build`` (one backend) and ``auto`` (a search) share:
the task and backend of a variant, building into a folder, measuring, writing reports,
and loading a stored engine back as a predictor."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hub.engines.base import EngineRecord
from hub.errors import UserError, clean
from hub.fsutil import write_json_atomic
from hub.registries import ENGINES
from hub.store import RunRecord, Store
from hub.versions import package_versions


def task_of(variant: Any) -> Any:
    from hub.registries import TASKS

    return TASKS.get(variant.task)


def backend_for(name: str, task: Any = None) -> Any:
    """A backend instance by name, among ``task``'s engines (the encoder backends when None)."""
    return (task.engines if task is not None else ENGINES).get(name)()


def load_engine_predictor(store: Store, record: EngineRecord, *, batch_size: int = 32, bulk: bool = False) -> Any:
    """The predictor of a stored engine; UserError when its files or machine do not fit.

    ``bulk``: the caller sends many inputs at once (an evaluation run), so the backend's
    ``bulk_options`` apply (OpenVINO: throughput mode, one slice of each batch per stream).
    """
    from transformers import AutoTokenizer

    variant = store.get_variant(record.variant_id)
    backend = backend_for(record.backend, task_of(variant))
    backend.check(record.precision)
    if bulk and backend.bulk_options:
        record = replace(record, options={**record.options, **backend.bulk_options})
    folder = store.engine_path(record.variant_id, record.id)
    if not folder.is_dir():
        raise UserError(f"engine '{record.id}': its folder {folder} is missing; rebuild it")
    if not (folder / "tokenizer").is_dir():
        raise UserError(f"engine '{record.id}': its tokenizer folder {folder / 'tokenizer'} is missing; rebuild it")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    predictor = backend.load(folder, record, tokenizer, variant.labels)
    predictor.batch_size = batch_size
    return predictor


def require_merged(variant: Any) -> None:
    """UserError unless the variant has merged weights: engines export one plain model."""
    if not variant.has_merged:
        raise UserError(f"variant '{variant.id}' ({variant.peft_method}) has no merged weights to export; "
                        "engines need a fully fine-tuned or merged variant")


def number_option(options: dict, key: str, default: Any, kind: type, low: float, high: float | None,
                  expected: str) -> Any:
    """``options[key]`` (taken out of ``options``) as a checked number, or ``default``; UserError naming the option."""
    raw = options.pop(key, None)
    if raw is None:
        return default
    try:
        value = kind(raw)
        if kind is int and str(raw).strip() != str(value):
            raise ValueError
    except (TypeError, ValueError):
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise UserError(f"--option {key}={clean(raw, 40)}: expected {expected}")
    return value


def max_length_option(value: Any, positions: int | None) -> int:
    """``--option max_length`` as a token count the model can take, or a UserError."""
    try:
        length = int(str(value))
    except ValueError:
        raise UserError(f"--option max_length={value}: expected a whole number of tokens") from None
    if length < 2 or (positions is not None and length > positions):
        raise UserError(f"--option max_length={value}: must be between 2 and the model's "
                        f"{positions if positions is not None else 'maximum'} positions")
    return length


def build_into(backend: Any, ctx: Any, folder: Path, precision: str, variant_id: str,
               engine_id: str) -> tuple[EngineRecord, Any]:
    """Let the backend write ``folder``; return the engine record and a loaded predictor."""
    used = backend.build(ctx, folder, precision)
    ctx.tokenizer.save_pretrained(folder / "tokenizer")
    record = EngineRecord(id=engine_id, variant_id=variant_id, backend=backend.name, precision=precision,
                          options=used, machine=backend.machine(), max_length=ctx.max_length)
    predictor = backend.load(folder, record, ctx.tokenizer, getattr(ctx, "labels", []))
    return record, predictor


def new_engine_id(backend: str, precision: str) -> str:
    return f"{backend}-{precision}-{uuid.uuid4().hex[:6]}"


def measure(task: Any, ctx: Any, record: EngineRecord, predictor: Any, evaluation: tuple, variant: Any, *,
            log=print, budget_s: float = 1.5, reference: Any = None) -> tuple[RunRecord, list, list, dict]:
    """Parity and latency into ``record``; the build run, its metrics, per-example rows and records.
    ``reference``: the eager fp32 outputs of the split when the caller has them (``auto`` does)."""
    split_name, split = evaluation
    start = time.perf_counter()
    if reference is None:
        reference = task.reference(ctx, split)
    measured = task.measure(ctx, record, predictor, split, reference, seed=variant.seed, budget_s=budget_s, log=log)
    record.parity, record.latency = measured.parity, measured.latency
    run = RunRecord(variant_id=variant.id, engine=record.id, suite="build", dataset=variant.dataset["source"],
                    split=split_name, data_hash=split.data_hash, config_hash=variant.config_hash, seed=variant.seed,
                    versions=package_versions(), n_examples=len(split.inputs), duration_s=time.perf_counter() - start)
    return run, measured.metrics, measured.predictions, measured.records


def write_reports(folder: Path, record: EngineRecord) -> None:
    write_json_atomic(folder / "parity.json", record.parity)
    write_json_atomic(folder / "latency.json", record.latency)
    write_json_atomic(folder / "engine.json", asdict(record))
