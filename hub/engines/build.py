"""Build, check, time and store an engine; load a stored engine as a predictor.

A build happens in a staging folder: the backend writes its files, the engine is loaded
back from them, its parity against eager fp32 torch and its latency are measured, and
only then does the folder move into the store and the engine row, with its build run
(task metrics, parity and latency as metrics), commit in one transaction. Everything
task-specific (what is exported, what parity means, the latency grid, the metrics) comes
from the variant's task through the task contract (:mod:`hub.task_spec`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hub.engines.auto import build_auto
from hub.engines.base import PRECISIONS
from hub.engines.steps import (backend_for, build_into, load_engine_predictor, measure,  # noqa: F401 - re-exported
                               max_length_option, new_engine_id, task_of, write_reports)
from hub.errors import UserError
from hub.registries import ENGINES
from hub.store import Store


def check_option_keys(options: dict | None, task: Any = None) -> None:
    """UserError for an ``--option`` key that no backend of the task reads (``auto`` hands every
    backend the same options, so a key one backend ignores is another's)."""
    from hub.errors import did_you_mean

    engines = task.engines if task is not None else ENGINES
    known = {"max_length", "candidates"}.union(getattr(task, "option_keys", ()),
                                               *(engines.get(name)().option_keys for name in engines.names()))
    for key in options or {}:
        if key not in known:
            raise UserError(f"--option {key}: no backend takes it{did_you_mean(key, sorted(known))}; "
                            f"options: {', '.join(sorted(known))}")


def build_engine(store: Store, variant_ref: str, backend_name: str, precision: str, *,
                 options: dict | None = None, log=print, budget_s: float = 1.5) -> str:
    """Build one engine of a variant and store it with its reports; returns the engine id."""
    variant = store.get_variant(variant_ref)
    task = task_of(variant)
    check_option_keys(options, task)
    if backend_name == "auto":
        return build_auto(store, variant_ref, options=options, log=log)
    backend = backend_for(backend_name, task)
    if precision not in backend.precisions and precision not in PRECISIONS:
        raise UserError(f"precision '{precision}' is not one of {', '.join(PRECISIONS)}")
    backend.check(precision)
    engine_id = new_engine_id(backend_name, precision)
    store.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.staging_dir, prefix="build-") as work:
        ctx, evaluation = task.build_context(store, variant, Path(work), dict(options or {}))
        log(f"building {engine_id} from {variant.id}")
        with store.stage_engine(variant.id, engine_id) as folder:
            record, predictor = build_into(backend, ctx, folder, precision, variant.id, engine_id)
            run, metrics, rows, records = measure(task, ctx, record, predictor, evaluation, variant, log=log,
                                                  budget_s=budget_s)
            write_reports(folder, record)
        store.add_engine(record, run, metrics, rows, records)
    return engine_id
