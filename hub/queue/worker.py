"""The local executor: claim a job, run it in this process, heartbeat while it runs, record how it ended.

A thread sends the heartbeat every ``heartbeat_s`` while the job runs; when the queue says the
worker no longer holds the job (cancelled, or taken back after a missed heartbeat), the run is
stopped at its next check (:mod:`hub.queue.execute`). Before each claim the worker takes back
jobs whose workers stopped beating (:meth:`~hub.queue.jobs.JobQueue.reap`), so a team needs no
separate supervisor.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from hub.errors import UserError, clean, first_line
from hub.queue.execute import JobStopped, execute_job
from hub.queue.jobs import Job, JobQueue, worker_name


def outcome(queue: JobQueue, job: Job, worker: str, run: Callable[[], str],
            ran_on: str | None = None) -> tuple[str, str]:
    """Run ``run()`` for ``job`` and record its end; returns (status, result id or error).
    ``ran_on``: where it ran, when not in the worker's own process (a Ray node).

    A user mistake (the variant was removed since) or an error of the run itself is FAILED at once:
    running it again would fail again. A stopped job was already changed by whoever stopped it."""
    try:
        result = run()
    except JobStopped as exc:
        return "STOPPED", str(exc)
    except UserError as exc:
        error = clean(exc)
    except Exception as exc:   # the run's own bug: record it on the job, keep the worker serving
        error = f"{type(exc).__name__}: {first_line(exc)}"
    else:
        held = queue.finish(job.id, worker, result, ran_on=ran_on)
        return ("FINISHED" if held else "STOPPED"), result
    return queue.fail(job.id, worker, error) or "STOPPED", error


class Heartbeat:
    """Beats for ``job_ids`` every ``interval`` s in a thread; ``lost`` holds those no longer held."""

    def __init__(self, queue: JobQueue, worker: str, job_ids: set[str], interval: float) -> None:
        self.queue, self.worker, self.job_ids, self.interval = queue, worker, job_ids, interval
        self.lost: set[str] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="evalhub-heartbeat")

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            ids = set(self.job_ids)
            try:
                self.lost |= ids - self.queue.heartbeat(ids, self.worker)
            except Exception:   # the database is briefly unreachable: the next beat tries again
                continue

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()


def run_local(store: Any, queue: JobQueue, *, once: bool = False, poll_s: float = 2.0, heartbeat_s: float = 10.0,
              log: Callable[[str], None] = print, stop: threading.Event | None = None) -> dict[str, int]:
    """Serve the queue in this process, one job at a time, until ``stop`` is set (or, with ``once``,
    until no job waits). Returns how many jobs ended in each way."""
    worker = worker_name("local")
    counts: dict[str, int] = {}
    stop = stop or threading.Event()
    while not stop.is_set():
        for job in queue.reap():
            log(f"job {job.id}: {job.status} ({job.error})")
        job = queue.claim(worker)
        if job is None:
            if once:
                break
            stop.wait(poll_s)
            continue
        log(f"job {job.id}: running {job.kind} {job.variant_id} (attempt {job.attempts} of {job.max_attempts})")
        started = time.perf_counter()
        try:
            with Heartbeat(queue, worker, {job.id}, heartbeat_s) as beat:
                status, detail = outcome(queue, job, worker, lambda: execute_job(
                    store, job, should_stop=lambda: job.id in beat.lost))
        except KeyboardInterrupt:   # the worker is stopping: the job waits for another one
            queue.release(job.id, worker, f"worker {worker} was interrupted")
            raise
        counts[status] = counts.get(status, 0) + 1
        log(f"job {job.id}: {status} {detail} ({time.perf_counter() - started:.1f} s)")
    return counts
