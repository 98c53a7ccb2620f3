"""The Ray executor: claimed jobs run as Ray tasks; the task writes its result to the shared database.

Ray does the placing, the process isolation and the re-running of a task whose worker process
or node died (``max_retries``); each job declares what it needs as Ray resources: one CPU, a
GPU for a TensorRT build, and a custom resource (``tensorrt``, ``openvino``, or any given with
``evalhub submit --resource``) where an engine must be built on the machine that serves it
(:data:`hub.queue.submit.SITE_BOUND`). The task stores the run and marks the job FINISHED or
FAILED itself, through the same :func:`hub.queue.worker.outcome` as the local executor.

Written here is what Ray does not know about: the queue. This process (the driver) claims jobs
while fewer than ``workers`` run, sends their heartbeats, cancels the Ray task of a job that was
cancelled (``ray.cancel(force=True)``: the run was not committed, so nothing of it is kept), and
gives a job back, PENDING and with its attempt not counted, when no node of the cluster has the
resources it needs any more (a Ray task asking for them would wait for ever) or when the
cluster goes away. A task that Ray gave up on after its retries (its node died each time)
costs the job an attempt, as a worker that stopped beating does.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from typing import Any, Callable

from hub.errors import UserError, clean, first_line
from hub.queue.jobs import Job, JobQueue, worker_name

RAY_RETRIES = 2   # Ray's own re-runs of a task whose worker or node died, before the job's attempt counts


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'evalhub[ray]' (or use --executor local)") from None
    return ray


def run_job_task(home: str, db: str, job: dict, worker: str) -> tuple[str, str, str]:
    """A Ray task: run ``job`` against the store at ``home`` with its results database at ``db`` (the
    driver's, password included: the node may have no EVALHUB_DB) and record how it ended.
    Returns (status, result id or error, the Ray node id it ran on)."""
    import ray

    from hub.queue.execute import execute_job
    from hub.queue.worker import outcome

    store, queue = _store_and_queue(home, db)
    node = ray.get_runtime_context().get_node_id()
    claimed = Job(**job)
    status, detail = outcome(queue, claimed, worker, lambda: execute_job(store, claimed), ran_on=f"node {node}")
    return status, detail, node


@functools.lru_cache(maxsize=4)
def _store_and_queue(home: str, db: str) -> tuple[Any, JobQueue]:
    """The store and its queue, opened once per Ray worker process (each open checks the schema)."""
    from hub.queue.db import open_queue
    from hub.store import Store

    store = Store(home, db=db)
    return store, open_queue(store)


def needs(job: Job) -> dict[str, float]:
    """The Ray resources a job asks for (CPU and GPU included)."""
    return {"CPU": 1.0, **({"GPU": float(job.args["num_gpus"])} if job.args.get("num_gpus") else {}),
            **{k: float(v) for k, v in (job.args.get("resources") or {}).items()}}


def missing(job: Job, totals: dict[str, float]) -> list[str]:
    """The resources ``job`` needs that no node of the cluster has (``totals``: ``ray.cluster_resources()``)."""
    return [name for name, amount in needs(job).items() if totals.get(name, 0.0) < amount]


class RayDriver:
    """Claims jobs into Ray tasks and keeps them accounted for; see the module's docstring."""

    def __init__(self, store: Any, queue: JobQueue, ray: Any, *, workers: int | None, heartbeat_s: float,
                 log: Callable[[str], None]) -> None:
        self.store, self.queue, self.ray, self.log = store, queue, ray, log
        self.worker = worker_name("ray")
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.heartbeat_s = heartbeat_s
        self.inflight: dict[Any, Job] = {}
        self.waiting: dict[str, str] = {}       # job id -> why no node can run it now (not claimed again)
        self.totals: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last_beat = 0.0
        self.task = ray.remote(run_job_task)

    def submit(self, job: Job) -> None:
        lacking = missing(job, self.totals)
        if lacking:
            reason = (f"no node of the Ray cluster has {', '.join(lacking)} now; the job waits for one "
                      "(start a node with `ray start --address ... --resources`)")
            self.queue.release(job.id, self.worker, reason)
            self.waiting[job.id] = reason
            self.log(f"job {job.id}: waiting: {reason}")
            return
        args = dict(num_cpus=1, num_gpus=float(job.args.get("num_gpus") or 0), max_retries=RAY_RETRIES,
                    resources={k: float(v) for k, v in (job.args.get("resources") or {}).items()})
        db = self.store.db.url.render_as_string(hide_password=False)
        ref = self.task.options(**args).remote(str(self.store.root.resolve()), db, job.to_dict(), self.worker)
        self.inflight[ref] = job
        self.log(f"job {job.id}: sent to Ray ({job.kind} {job.variant_id}, needs {needs(job)})")

    def fill(self) -> int:
        """Claim jobs while fewer than ``workers`` run; returns how many were claimed."""
        claimed = 0
        while len(self.inflight) < self.workers:
            job = self.queue.claim(self.worker, exclude=self.waiting)
            if job is None:
                break
            claimed += 1
            self.submit(job)
        return claimed

    def collect(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for a task to end (returning as soon as one does, so its slot is
        filled again at once), and account for each that has."""
        if not self.inflight:
            time.sleep(timeout)
            return
        ready, rest = self.ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        for ref in ready:
            job = self.inflight.pop(ref)
            try:
                status, detail, node = self.ray.get(ref)
                detail = f"{detail} on node {node[:12]}"
            except self.ray.exceptions.TaskCancelledError:
                status, detail = "STOPPED", "its Ray task was cancelled"
            except self.ray.exceptions.RayTaskError as exc:   # the task's code failed outside the run
                status, detail = "FAILED", f"{type(exc.cause).__name__}: {first_line(exc.cause)}"
                self.queue.fail(job.id, self.worker, detail)
            except self.ray.exceptions.RayError as exc:   # its node or worker died, after Ray's retries
                detail = f"Ray could not run it: {type(exc).__name__}: {first_line(exc)}"
                status = self.queue.fail(job.id, self.worker, detail, retry=True) or "STOPPED"
            self.counts[status] = self.counts.get(status, 0) + 1
            self.log(f"job {job.id}: {status} {clean(detail)}")

    def check(self) -> None:
        """Heartbeats; cancelled jobs stopped; jobs that no node can run any more given back."""
        totals = {k: float(v) for k, v in self.ray.cluster_resources().items()}
        if totals != self.totals:   # a node joined or left: waiting jobs may run now
            self.totals, self.waiting = totals, {}
        if time.time() - self.last_beat >= self.heartbeat_s and self.inflight:
            held = self.queue.heartbeat([job.id for job in self.inflight.values()], self.worker)
            self.last_beat = time.time()
            for ref, job in list(self.inflight.items()):
                if job.id not in held:
                    self.log(f"job {job.id}: cancelled; stopping its Ray task")
                    self.drop(ref)
        for ref, job in list(self.inflight.items()):
            lacking = missing(job, totals)
            if lacking:
                reason = (f"the Ray node with {', '.join(lacking)} left while the job ran; "
                          "it waits for a node that has it")
                self.drop(ref)
                self.queue.release(job.id, self.worker, reason)
                self.waiting[job.id] = reason
                self.log(f"job {job.id}: PENDING: {reason}")

    def drop(self, ref: Any) -> None:
        self.inflight.pop(ref, None)
        self.ray.cancel(ref, force=True)

    def give_back(self, reason: str) -> int:
        """Every job in flight back to PENDING and its Ray task cancelled (the cluster went away, or this
        worker is stopping). A task that commits its run anyway leaves it for the job's next run to find."""
        for ref, job in self.inflight.items():
            self.queue.release(job.id, self.worker, reason)
            try:
                self.ray.cancel(ref, force=True)
            except Exception:   # the cluster is gone: nothing to cancel there
                pass
        count, self.inflight = len(self.inflight), {}
        return count


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """UserError now when ``HOST:PORT`` takes no connection (``ray.init`` would wait minutes on it)."""
    import socket

    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:   # "auto", a ray:// client address: Ray's to judge
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise UserError(f"cannot reach the Ray cluster at {clean(address, 120)} ({why}); "
                        "start it with `ray start --head` there, or check --address / RAY_ADDRESS") from None


def run_ray(store: Any, queue: JobQueue, *, address: str | None = None, workers: int | None = None,
            once: bool = False, poll_s: float = 2.0, heartbeat_s: float = 10.0,
            log: Callable[[str], None] = print, stop: threading.Event | None = None) -> dict[str, int]:
    """Serve the queue on a Ray cluster (``address``; None: ``$RAY_ADDRESS``, else a local Ray) until
    ``stop`` is set or, with ``once``, until no job waits or runs. Returns how many jobs ended how."""
    ray = import_ray()
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: give 1 or more")
    if not ray.is_initialized():
        check_reachable(address or os.environ.get("RAY_ADDRESS"))
        try:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            where = address or os.environ.get("RAY_ADDRESS") or "a new local Ray"
            raise UserError(f"cannot join the Ray cluster at {clean(where, 120)}: "
                            f"{first_line(exc)}; start one with `ray start --head` (or give --address)") from None
    driver = RayDriver(store, queue, ray, workers=workers, heartbeat_s=heartbeat_s, log=log)
    cpus = ray.cluster_resources().get("CPU", 0)
    log(f"worker {driver.worker}: {driver.workers} jobs at once on Ray ({cpus:g} CPUs)")
    stop = stop or threading.Event()
    try:
        while not stop.is_set():
            for job in queue.reap():
                log(f"job {job.id}: {job.status} ({job.error})")
            driver.check()
            claimed = driver.fill()
            if once and not claimed and not driver.inflight:
                break
            driver.collect(poll_s if not driver.inflight else min(poll_s, heartbeat_s))
    except ray.exceptions.RaySystemError as exc:
        count = driver.give_back(f"the Ray cluster went away ({first_line(exc)})")
        raise UserError(f"the Ray cluster went away ({first_line(exc)}); its {count} running jobs are PENDING "
                        "again for another worker") from None
    finally:
        driver.give_back(f"worker {driver.worker} stopped")
    return driver.counts
