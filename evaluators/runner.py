"""Run an evaluation suite on a stored variant and commit the whole run to the results DB."""

from __future__ import annotations

import time
from typing import Any, Callable

from evaluators.base import EvalContext, load_suite
from hub.errors import UserError
from hub.registries import EVALUATORS, TASKS
from hub.run_config import check_eval_numbers
from hub.store import RunRecord, Store
from hub.task_spec import EvalSplit
from hub.versions import package_versions


def load_eval_splits(record: Any, splits: tuple[str, ...]) -> dict[str, EvalSplit]:
    """split -> (inputs, references, content hash, warnings) of a variant's data, read once
    by the variant's task."""
    return TASKS.get(record.task).load_eval_splits(record, splits)


def load_eval_split(record: Any, split: str) -> EvalSplit:
    """(inputs, references, content hash, warnings) of one split of a variant's data."""
    return load_eval_splits(record, (split,))[split]


def resolve_predictor(store: Store, record: Any, engine: str | None, batch_size: int,
                      progress: bool = False) -> tuple[Any, str]:
    """(predictor, name recorded on the run): the torch model, or a stored engine of the variant.

    ``engine`` is an engine id (or unique prefix), or a backend name for the variant's latest
    engine of that backend.
    """
    if engine is None:
        predictor = TASKS.get(record.task).load_predictor(store, record, batch_size=batch_size, progress=progress)
        return predictor, predictor.engine
    from hub.engines.build import load_engine_predictor

    engine_record = store.get_engine(engine, variant_id=record.id)
    return load_engine_predictor(store, engine_record, batch_size=batch_size, bulk=True), engine_record.id


def check_applies(suite: Any, task: Any) -> None:
    """UserError when the suite names an evaluator that does not apply to the task."""
    wrong = [name for name, _ in suite.steps() if name not in task.evaluators]
    if wrong:
        from hub.suites import available_suites

        # the same scorecard for this task is named after its default suite: safety -> generation-safety
        twin = f"{task.default_suite}-{suite.name}"
        hint = twin if twin in available_suites() else task.default_suite
        raise UserError(f"suite {suite.name!r} runs {', '.join(wrong)}, which do not apply to task {task.name} "
                        f"(its evaluators: {', '.join(sorted(task.evaluators))}); try suite {hint!r}")


def check_evaluation(store: Store, variant_ref: str, suite_name: str | None, engine: str | None,
                     batch_size: int, bootstrap: int) -> tuple[Any, Any, Any, str | None]:
    """(variant, task, suite, engine id or None) of an evaluation, checked before any data or model
    loads: its numbers, the variant, the suite and that it applies to the task, the engine. UserError
    naming what is wrong (``evalhub eval`` and a queued job's submission both check here)."""
    try:
        check_eval_numbers(batch_size, bootstrap)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    record = store.get_variant(variant_ref)
    task = TASKS.get(record.task)
    suite = load_suite(suite_name or task.default_suite)
    check_applies(suite, task)
    return record, task, suite, store.get_engine(engine, variant_id=record.id).id if engine is not None else None


def run_suite(store: Store, variant_ref: str, suite_name: str | None = None, *, split: str = "test",
              engine: str | None = None, batch_size: int = 64, bootstrap: int = 1000,
              seed: int | None = None, log=print, progress: bool = True,
              on_evaluator: Callable[[str, int, int], None] | None = None, run_id: str | None = None) -> str:
    """Evaluate a variant with every evaluator of a suite (None: its task's default suite); returns
    the new run id. ``on_evaluator(name, index, count)`` is called as each evaluator starts (a progress panel).
    ``run_id``: the id to store the run under (a queued job fixes it, so that a retry cannot store it twice)."""
    record, task, suite, engine = check_evaluation(store, variant_ref, suite_name, engine, batch_size, bootstrap)
    texts, refs, data_hash, warnings = load_eval_split(record, split)
    for warning in warnings:
        log(f"warning: {warning}")
    predictor, engine_name = resolve_predictor(store, record, engine, batch_size, progress)
    seed = record.seed if seed is None else seed
    start = time.perf_counter()
    context = EvalContext(store=store, variant=record, engine=engine, log=log)
    metrics, predictions, records, steps = [], [], {}, []
    suite_steps = list(suite.steps())
    for index, (name, options) in enumerate(suite_steps):
        if on_evaluator is not None:
            on_evaluator(name, index, len(suite_steps))
        evaluator = EVALUATORS.get(name)()
        runs_on = predictor
        if getattr(evaluator, "needs_gradients", False) and engine is not None:
            log(f"{name} needs gradients: it runs on the torch model of {record.id}, not on engine {engine_name}")
            runs_on = context.torch_predictor()
        began = time.perf_counter()
        out = evaluator.evaluate(runs_on, texts, refs, record.labels, seed=seed, context=context,
                                 **{"bootstrap": bootstrap, **options})
        metrics += out.metrics
        steps.append({"evaluator": name, "options": options, "metrics": [m.name for m in out.metrics],
                      "seconds": round(time.perf_counter() - began, 2)})
        predictions = predictions or out.predictions
        if out.records:
            records[name] = out.records
    run = RunRecord(variant_id=record.id, engine=engine_name, suite=suite.name,
                    dataset=record.dataset["source"], split=split, data_hash=data_hash,
                    config_hash=record.config_hash, seed=seed, versions=package_versions(),
                    n_examples=len(texts), duration_s=time.perf_counter() - start, suite_steps=steps,
                    **({"id": run_id} if run_id else {}))
    return store.add_run(run, metrics, predictions, records)
