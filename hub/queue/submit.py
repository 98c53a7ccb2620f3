"""What a submission checks before it queues a job, for the CLI and the app alike.

A job is checked when it is submitted, not when a worker picks it up: the variant, the suite
(and that it applies to the variant's task), the engine and the backend must exist now, so a
mistake is one line to the person who made it. The duplicate key is computed here: the
engine as its stored id (``best`` or a backend name would mean another engine later), the
data hash as the one recorded for the split when the variant was trained.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.errors import UserError, did_you_mean, quote
from hub.queue.states import DEFAULT_MAX_ATTEMPTS

if TYPE_CHECKING:
    from hub.queue.jobs import Job, JobQueue

BUILD_BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
# backends whose engine must be built on the machine that serves it: a Ray custom resource of that name
# (TensorRT plans are specific to the GPU model, OpenVINO compiles for the host's CPU)
SITE_BOUND = {"tensorrt": {"tensorrt": 1}, "openvino": {"openvino": 1}}


def _common(submitted_by: str, priority: int, max_attempts: int, resources: dict | None) -> dict:
    if max_attempts < 1:
        raise UserError(f"--max-attempts {max_attempts}: a job needs at least one attempt")
    for name, amount in (resources or {}).items():
        if not isinstance(amount, (int, float)) or amount <= 0:
            raise UserError(f"--resource {quote(name)}={quote(amount)}: the amount must be a number above 0")
    return {"submitted_by": submitted_by, "priority": priority, "max_attempts": max_attempts}


def submit_eval(store: Any, queue: JobQueue, variant: str, suite: str | None = None, *, engine: str | None = None,
                split: str = "test", batch_size: int = 64, bootstrap: int = 1000, resources: dict | None = None,
                submitted_by: str = "", priority: int = 0,
                max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> tuple[Job, str]:
    """Queue ``evalhub eval VARIANT --suite SUITE [--engine E]``; returns (job, created/exists/resubmitted)."""
    from evaluators.runner import check_evaluation

    common = _common(submitted_by, priority, max_attempts, resources)
    record, task, loaded, engine_id = check_evaluation(store, variant, suite, engine or None, batch_size, bootstrap)
    engine_id = engine_id or ""
    splits = record.dataset.get("hashes") or {}
    if splits and split not in splits:
        raise UserError(f"variant {record.id} has no split {quote(split)}{did_you_mean(split, splits)}; "
                        f"its splits: {', '.join(sorted(splits))}")
    args = {"suite": suite or task.default_suite, "split": split, "engine": engine_id or None,
            "batch_size": batch_size, "bootstrap": bootstrap, "resources": dict(resources or {})}
    key = {"variant_id": record.id, "engine": engine_id, "suite": loaded.name, "split": split,
           "data_hash": splits.get(split, "")}
    return queue.submit("eval", args, key, **common)


def submit_build(store: Any, queue: JobQueue, variant: str, backend: str, *, precision: str = "fp32",
                 options: dict | None = None, resources: dict | None = None, submitted_by: str = "",
                 priority: int = 0, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> tuple[Job, str]:
    """Queue ``evalhub build-engine VARIANT --backend B``; returns (job, created/exists/resubmitted)."""
    from hub.engines.base import PRECISIONS
    from hub.engines.build import check_option_keys
    from hub.engines.steps import task_of

    common = _common(submitted_by, priority, max_attempts, resources)
    if backend not in BUILD_BACKENDS:
        raise UserError(f"unknown backend {quote(backend)}{did_you_mean(backend, BUILD_BACKENDS)}; "
                        f"backends: {', '.join(BUILD_BACKENDS)}")
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {quote(precision)}; precisions: {', '.join(PRECISIONS)}")
    record = store.get_variant(variant)
    check_option_keys(options, task_of(record))
    needs = {**SITE_BOUND.get(backend, {}), **(resources or {})}
    args = {"backend": backend, "precision": precision, "options": dict(options or {}), "resources": needs,
            "num_gpus": 1 if backend == "tensorrt" else 0}
    key = {"variant_id": record.id, "engine": f"{backend}-{precision}",
           "suite": "build:" + ",".join(f"{k}={v}" for k, v in sorted((options or {}).items())), "split": "",
           "data_hash": ""}
    return queue.submit("build-engine", args, key, **common)
