"""Run one claimed job: the same functions ``evalhub eval`` and ``evalhub build-engine`` call.

Stopping is cooperative: ``should_stop()`` (the job was cancelled, or taken back from this
worker) is asked as each evaluator starts and whenever the run logs a line, and raises
:class:`JobStopped` there. Nothing half-done is kept either way: the store commits a run (or
an engine with its build run) in one transaction at the end, or not at all.

An ``eval`` job stores its run under :attr:`Job.run_id`, so a retry of a job whose earlier
attempt committed (its worker died between the commit and marking the job FINISHED) finds
that run and stores no second one; the run's primary key refuses a second copy in any case.
"""

from __future__ import annotations

from typing import Any, Callable

from hub.queue.jobs import Job


class JobStopped(Exception):
    """The job was cancelled or taken back while it ran; nothing of it was stored."""


def _stored_run(store: Any, job: Job) -> bool:
    return any(run["id"] == job.run_id for run in store.runs(job.variant_id))


def execute_job(store: Any, job: Job, should_stop: Callable[[], bool] = lambda: False,
                log: Callable[..., None] = lambda *a: None) -> str:
    """Run ``job`` against ``store``; returns the run id (``eval``) or engine id (``build-engine``)."""
    def check(*_: Any) -> None:
        if should_stop():
            raise JobStopped(f"job {job.id} was cancelled or taken back from this worker")

    def checked_log(*parts: Any) -> None:
        check()
        log(*parts)

    args = job.args
    if job.kind == "eval":
        from evaluators.runner import run_suite

        if _stored_run(store, job):
            return job.run_id
        try:
            return run_suite(store, job.variant_id, args.get("suite"), split=args.get("split", "test"),
                             engine=args.get("engine"), batch_size=args.get("batch_size", 64),
                             bootstrap=args.get("bootstrap", 1000), log=checked_log, progress=False,
                             on_evaluator=check, run_id=job.run_id)
        except Exception:
            if _stored_run(store, job):   # another attempt of this job stored it first
                return job.run_id
            raise
    if job.kind == "build-engine":
        from hub.engines.build import build_engine

        check()
        return build_engine(store, job.variant_id, args["backend"], args.get("precision", "fp32"),
                            options=args.get("options") or {}, log=checked_log)
    raise ValueError(f"job {job.id} has kind {job.kind!r}, which this evalhub cannot run")
