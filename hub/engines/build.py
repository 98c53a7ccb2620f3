"""Build, check, time and store an engine; load a stored engine as a predictor.

A build happens in a staging folder: the backend writes its files, the engine is loaded
back from them, its parity against eager fp32 torch and its latency are measured, and
only then does the folder move into the store and the engine row, with its build run
(task metrics, parity and latency as metrics), commit in one transaction.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.base import PRECISIONS, BuildContext, EngineRecord
from hub.engines.reports import latency_metrics, latency_report, parity_report
from hub.errors import UserError
from hub.fsutil import write_json_atomic
from hub.registries import ENGINES
from hub.store import RunRecord, Store
from hub.versions import package_versions

CALIBRATION_EXAMPLES = 128   # NNCF and ORT static calibration; more adds build time, not accuracy here


def backend_for(name: str) -> Any:
    return ENGINES.get(name)()


def load_engine_predictor(store: Store, record: EngineRecord, *, batch_size: int = 32, bulk: bool = False) -> Any:
    """The predictor of a stored engine; UserError when its files or machine do not fit.

    ``bulk``: the caller sends many texts at once (an evaluation run), so the backend's
    ``bulk_options`` apply (OpenVINO: throughput mode, one slice of each batch per stream).
    """
    from transformers import AutoTokenizer

    backend = backend_for(record.backend)
    backend.check(record.precision)
    if bulk and backend.bulk_options:
        record = replace(record, options={**record.options, **backend.bulk_options})
    folder = store.engine_path(record.variant_id, record.id)
    if not folder.is_dir():
        raise UserError(f"engine '{record.id}': its folder {folder} is missing; rebuild it")
    if not (folder / "tokenizer").is_dir():
        raise UserError(f"engine '{record.id}': its tokenizer folder {folder / 'tokenizer'} is missing; rebuild it")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")
    predictor = backend.load(folder, record, tokenizer, _labels(store, record))
    predictor.batch_size = batch_size
    return predictor


def _labels(store: Store, record: EngineRecord) -> list[str]:
    return store.get_variant(record.variant_id).labels


def build_context(store: Store, variant: Any, work_dir: Path, options: dict) -> tuple[BuildContext, tuple]:
    """The merged fp32 model, its tokenizer, calibration texts and the evaluation split."""
    from evaluators.runner import load_eval_splits
    from tasks.text_classification.predict import load_model

    if not variant.has_merged:
        raise UserError(f"variant '{variant.id}' ({variant.peft_method}) has no merged weights to export; "
                        "engines need a fully fine-tuned or merged variant")
    model, tokenizer = load_model(store, variant)
    max_length = _max_length(options.pop("max_length", variant.run_config.get("model", {}).get("max_length", 128)),
                             getattr(model.config, "max_position_embeddings", None))
    split = variant.run_config.get("eval", {}).get("split", "test")
    splits = load_eval_splits(variant, ("train", split))   # one read of the data for both
    train_texts = splits["train"][0]
    rng = np.random.default_rng(variant.seed)
    pick = rng.choice(len(train_texts), size=min(CALIBRATION_EXAMPLES, len(train_texts)), replace=False)
    ctx = BuildContext(model=model.float().eval(), tokenizer=tokenizer, labels=variant.labels,
                       max_length=max_length, calibration_texts=[train_texts[i] for i in sorted(pick)],
                       work_dir=work_dir, options=options)
    texts, refs, data_hash, _ = splits[split]
    return ctx, (split, texts, np.asarray(refs), data_hash)


def _max_length(value: Any, positions: int | None) -> int:
    """``--option max_length`` as a token count the model can take, or a UserError."""
    try:
        length = int(str(value))
    except ValueError:
        raise UserError(f"--option max_length={value}: expected a whole number of tokens") from None
    if length < 2 or (positions is not None and length > positions):
        raise UserError(f"--option max_length={value}: must be between 2 and the model's "
                        f"{positions if positions is not None else 'maximum'} positions")
    return length


def build_into(backend: Any, ctx: BuildContext, folder: Path, precision: str, variant_id: str,
               engine_id: str) -> tuple[EngineRecord, Any]:
    """Let the backend write ``folder``; return the engine record and a loaded predictor."""
    used = backend.build(ctx, folder, precision)
    ctx.tokenizer.save_pretrained(folder / "tokenizer")
    record = EngineRecord(id=engine_id, variant_id=variant_id, backend=backend.name, precision=precision,
                          options=used, machine=backend.machine(), max_length=ctx.max_length)
    predictor = backend.load(folder, record, ctx.tokenizer, ctx.labels)
    return record, predictor


def new_engine_id(backend: str, precision: str) -> str:
    return f"{backend}-{precision}-{uuid.uuid4().hex[:6]}"


def check_option_keys(options: dict | None) -> None:
    """UserError for an ``--option`` key that no backend reads (``auto`` hands every backend the same
    options, so a key one backend ignores is another's)."""
    from hub.errors import did_you_mean

    known = {"max_length", "candidates"}.union(*(backend_for(name).option_keys for name in ENGINES.names()
                                                 if name != "auto"))
    for key in options or {}:
        if key not in known:
            raise UserError(f"--option {key}: no backend takes it{did_you_mean(key, sorted(known))}; "
                            f"options: {', '.join(sorted(known))}")


def build_engine(store: Store, variant_ref: str, backend_name: str, precision: str, *,
                 options: dict | None = None, log=print, budget_s: float = 1.5) -> str:
    """Build one engine of a variant and store it with its reports; returns the engine id."""
    check_option_keys(options)
    if backend_name == "auto":
        from hub.engines.auto import build_auto

        return build_auto(store, variant_ref, options=options, log=log)
    if precision not in PRECISIONS:
        raise UserError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    backend = backend_for(backend_name)
    backend.check(precision)
    variant = store.get_variant(variant_ref)
    engine_id = new_engine_id(backend_name, precision)
    store.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.staging_dir, prefix="build-") as work:
        ctx, evaluation = build_context(store, variant, Path(work), dict(options or {}))
        log(f"building {engine_id} from {variant.id}")
        with store.stage_engine(variant.id, engine_id) as folder:
            record, predictor = build_into(backend, ctx, folder, precision, variant.id, engine_id)
            run, metrics, rows = measure(ctx, record, predictor, evaluation, variant, log=log, budget_s=budget_s)
            write_reports(folder, record)
        store.add_engine(record, run, metrics, rows)
    return engine_id


def measure(ctx: BuildContext, record: EngineRecord, predictor: Any, evaluation: tuple, variant: Any, *,
            log=print, budget_s: float = 1.5, reference: np.ndarray | None = None) -> tuple[RunRecord, list, list]:
    """Parity and latency into ``record``; the build run's metrics and per-example rows.
    ``reference``: the eager fp32 logits of the split when the caller has them (``auto`` does)."""
    from evaluators.task_metrics import ClassificationEvaluator
    from tasks.text_classification.predict import TorchPredictor

    split, texts, refs, data_hash = evaluation
    start = time.perf_counter()
    if reference is None:
        reference = TorchPredictor(ctx.model, ctx.tokenizer, ctx.labels, max_length=ctx.max_length).logits(texts)
    candidate = predictor.logits(texts)
    record.parity = parity_report(reference, candidate, refs)
    log(f"parity: agreement {record.parity['agreement']:.4f}, max |Δlogit| {record.parity['max_abs_logit_diff']:.2e}, "
        f"accuracy Δ {record.parity['accuracy_delta']:+.4f} -> {'passed' if record.parity['passed'] else 'FAILED'}")
    record.latency = latency_report(predictor, ctx.tokenizer, budget_s=budget_s)
    out = ClassificationEvaluator().evaluate(_Fixed(predictor, candidate), texts, list(refs), ctx.labels,
                                             seed=variant.seed)
    from evaluators.classification import MetricResult

    extra = [MetricResult("agreement", record.parity["agreement"]),
             MetricResult("max_abs_logit_diff", record.parity["max_abs_logit_diff"], higher_is_better=False),
             MetricResult("accuracy_delta", record.parity["accuracy_delta"])]
    extra += [MetricResult(name, value, higher_is_better=name.startswith("throughput"))
              for name, value in latency_metrics(record.latency).items()]
    run = RunRecord(variant_id=variant.id, engine=record.id, suite="build", dataset=variant.dataset["source"],
                    split=split, data_hash=data_hash, config_hash=variant.config_hash, seed=variant.seed,
                    versions=package_versions(), n_examples=len(texts), duration_s=time.perf_counter() - start)
    return run, out.metrics + extra, out.predictions


class _Fixed:
    """A predictor that answers with logits already computed (no second pass over the split)."""

    def __init__(self, predictor: Any, logits: np.ndarray) -> None:
        from hub.engines.predictor import softmax

        self.labels, self.engine = predictor.labels, predictor.engine
        self._probs = softmax(logits.astype(np.float64)).astype(np.float32)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return self._probs


def write_reports(folder: Path, record: EngineRecord) -> None:
    write_json_atomic(folder / "parity.json", record.parity)
    write_json_atomic(folder / "latency.json", record.latency)
    write_json_atomic(folder / "engine.json", asdict(record))
