"""The job queue over the ``jobs`` table: submit, claim, heartbeat, finish, cancel, reap.

Every state change is one SQL statement guarded by the state it expects (``WHERE status =
'RUNNING' AND worker = :me``), so a worker that lost its job (cancelled, or handed to another
worker after its heartbeat stopped) finds out from a zero row count and never overwrites what
happened meanwhile.

Claiming is the one place the backends differ, and only in how the row is locked:
PostgreSQL picks the row with ``SELECT ... FOR UPDATE SKIP LOCKED`` inside the ``UPDATE``
(concurrent claimers skip each other's rows instead of waiting); SQLite has one writer at a
time, and the claim's transaction is ``BEGIN IMMEDIATE`` (every transaction of
:mod:`hub.db.engine`'s SQLite writer is), which takes the write lock before it reads (a deferred
transaction would read, then fail to upgrade its lock when another worker committed in between).
Reads (``get``, ``list``, ``counts``) go through the read-only engine and take no lock.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any, Iterable

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from hub.errors import UserError, did_you_mean, quote
from hub.queue.schema import jobs
from hub.queue.states import CANCELLED, DEFAULT_MAX_ATTEMPTS, DONE, FAILED, FINISHED, PENDING, RUNNING, STATUSES

KEY_COLUMNS = ("variant_id", "engine", "suite", "split", "data_hash")


@dataclass
class Job:
    """One row of ``jobs``."""

    id: str
    kind: str
    args: dict
    status: str
    submitted_by: str
    priority: int
    worker: str | None
    heartbeat: float | None
    attempts: int
    max_attempts: int
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    result_id: str | None
    variant_id: str
    engine: str
    suite: str
    split: str
    data_hash: str

    @classmethod
    def from_row(cls, row: Any) -> "Job":
        mapping = row._mapping
        return cls(**{f.name: mapping[f.name] for f in fields(cls)})

    @property
    def run_id(self) -> str:
        """The id of the run an ``eval`` job stores: fixed by the job, so a retried job whose first
        attempt did commit finds its run instead of storing a second one."""
        return "run-" + self.id.removeprefix("job-")

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def worker_name(executor: str = "local") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{executor}"


class JobQueue:
    """The queue in the database of ``engine``; ``stale_s``: a RUNNING job whose heartbeat is
    older than this is taken back from its worker by :meth:`reap`."""

    def __init__(self, engine: Engine, *, stale_s: float = 60.0, reader: Engine | None = None) -> None:
        self.engine = engine
        self.reader = reader or engine
        self.stale_s = stale_s
        self.postgres = engine.dialect.name == "postgresql"

    # -- submitting ---------------------------------------------------------------------
    def submit(self, kind: str, args: dict, key: dict, *, submitted_by: str = "", priority: int = 0,
               max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> tuple[Job, str]:
        """Queue a job; returns (job, what happened): ``"created"``, ``"resubmitted"`` (the same work
        had FAILED or was CANCELLED: that row is PENDING again) or ``"exists"`` (it is pending,
        running or finished: that job is returned, nothing is queued)."""
        row = {"id": "job-" + uuid.uuid4().hex[:12], "kind": kind, "args": args, "status": PENDING,
               "submitted_by": submitted_by, "priority": priority, "attempts": 0, "max_attempts": max_attempts,
               "created_at": time.time(), **{c: key.get(c) or "" for c in KEY_COLUMNS}}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(jobs).values(**row))
            return self.get(row["id"]), "created"
        except IntegrityError:
            pass
        same = [jobs.c.kind == kind] + [jobs.c[c] == row[c] for c in KEY_COLUMNS]
        with self.engine.begin() as conn:
            again = conn.execute(update(jobs).where(*same, jobs.c.status.in_((FAILED, CANCELLED))).values(
                status=PENDING, args=args, priority=priority, submitted_by=submitted_by, attempts=0,
                max_attempts=max_attempts, worker=None, heartbeat=None, error=None, started_at=None,
                finished_at=None, result_id=None, created_at=row["created_at"]))
            existing = Job.from_row(conn.execute(select(jobs).where(*same)).one())
        return existing, "resubmitted" if again.rowcount else "exists"

    def resubmit(self, ref: str, *, submitted_by: str = "") -> Job:
        """A FAILED or CANCELLED job PENDING again (same id, attempts from 0); UserError otherwise."""
        job = self.get(ref)
        if job.status not in (FAILED, CANCELLED):
            raise UserError(f"job {job.id} is {job.status}; only a FAILED or CANCELLED job can be resubmitted")
        again, _ = self.submit(job.kind, job.args, {c: getattr(job, c) for c in KEY_COLUMNS},
                               submitted_by=submitted_by or job.submitted_by, priority=job.priority,
                               max_attempts=job.max_attempts)
        return again

    # -- reading --------------------------------------------------------------------------
    def get(self, ref: str) -> Job:
        """A job by id or unique id prefix; UserError naming what exists when there is none."""
        with self.reader.connect() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.id.startswith(ref, autoescape=True))).all()
        exact = [r for r in rows if r.id == ref]
        if len(exact or rows) == 1:
            return Job.from_row((exact or rows)[0])
        if rows:
            raise UserError(f"job {quote(ref)} is ambiguous ({len(rows)} jobs start with it); give more of the id")
        recent = [j.id for j in self.list(limit=8)]
        raise UserError(f"no job {quote(ref)}{did_you_mean(ref, recent)}"
                        + (f"; recent: {', '.join(recent)}" if recent else "; the queue is empty"))

    def list(self, statuses: Iterable[str] = (), limit: int | None = None) -> list[Job]:
        """Jobs, newest first; ``statuses``: only those."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id)
        statuses = list(statuses)
        if statuses:
            query = query.where(jobs.c.status.in_(statuses))
        with self.reader.connect() as conn:
            return [Job.from_row(r) for r in conn.execute(query.limit(limit)).all()]

    # -- working --------------------------------------------------------------------------
    def claim(self, worker: str, exclude: Iterable[str] = ()) -> Job | None:
        """Take the next PENDING job (highest priority, then oldest) for ``worker``: it is RUNNING,
        its heartbeat now, its attempts one more. None when no job waits. Exactly one of any
        number of concurrent claimers gets a given job."""
        pick = select(jobs.c.id).where(jobs.c.status == PENDING)
        exclude = list(exclude)
        if exclude:
            pick = pick.where(jobs.c.id.not_in(exclude))
        pick = pick.order_by(jobs.c.priority.desc(), jobs.c.created_at, jobs.c.id).limit(1)
        if self.postgres:
            pick = pick.with_for_update(skip_locked=True)
        now = time.time()
        claim = (update(jobs).where(jobs.c.id == pick.scalar_subquery(), jobs.c.status == PENDING)
                 .values(status=RUNNING, worker=worker, heartbeat=now, started_at=now, attempts=jobs.c.attempts + 1)
                 .returning(*jobs.c))
        with self.engine.begin() as conn:   # SQLite: BEGIN IMMEDIATE (see the module's docstring)
            row = conn.execute(claim).first()
        return Job.from_row(row) if row else None

    def heartbeat(self, job_ids: Iterable[str], worker: str) -> set[str]:
        """Mark ``worker`` alive on its jobs; returns those it still holds (the others were cancelled
        or taken back: the worker stops them)."""
        job_ids = list(job_ids)
        if not job_ids:
            return set()
        stmt = (update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.worker == worker, jobs.c.status == RUNNING)
                .values(heartbeat=time.time()).returning(jobs.c.id))
        with self.engine.begin() as conn:
            return set(conn.execute(stmt).scalars())

    def finish(self, job_id: str, worker: str, result_id: str, ran_on: str | None = None) -> bool:
        """RUNNING -> FINISHED with what it made; False when ``worker`` no longer holds the job.
        ``ran_on``: where the work ran (a Ray node), kept in ``worker`` as ``WORKER on WHERE``."""
        return self._change(job_id, worker, status=FINISHED, result_id=result_id, error=None,
                            finished_at=time.time(), **({"worker": f"{worker} on {ran_on}"} if ran_on else {}))

    def fail(self, job_id: str, worker: str, error: str, *, retry: bool = False) -> str | None:
        """The job's run failed: FAILED with ``error``, or with ``retry`` (the worker died, not the
        job) PENDING again while it has attempts left. Returns the new status (None: not held)."""
        status = case((jobs.c.attempts < jobs.c.max_attempts, PENDING), else_=FAILED) if retry else FAILED
        held = self._change(job_id, worker, status=status, error=error, worker=None,
                            finished_at=case((status == FAILED, time.time()), else_=None) if retry else time.time())
        return self.get(job_id).status if held else None

    def release(self, job_id: str, worker: str, reason: str) -> bool:
        """Give a job back, PENDING, without counting the attempt (its worker could not run it:
        the cluster went away, or has no node with the resources it needs)."""
        return self._change(job_id, worker, status=PENDING, error=reason, worker=None, heartbeat=None,
                            attempts=jobs.c.attempts - 1)

    def _change(self, job_id: str, holder: str, **values: Any) -> bool:
        stmt = update(jobs).where(jobs.c.id == job_id, jobs.c.status == RUNNING, jobs.c.worker == holder)
        with self.engine.begin() as conn:
            return conn.execute(stmt.values(**values)).rowcount == 1

    def cancel(self, ref: str) -> tuple[Job, str]:
        """Cancel a job: a PENDING one at once; a RUNNING one is CANCELLED now and its worker stops it
        at its next heartbeat. Returns (job, its status before). UserError when it already ended."""
        job = self.get(ref)
        if job.status in DONE:
            raise UserError(f"job {job.id} already ended ({job.status}); nothing to cancel")
        with self.engine.begin() as conn:
            done = conn.execute(update(jobs).where(jobs.c.id == job.id, jobs.c.status == job.status).values(
                status=CANCELLED, finished_at=time.time(), error=f"cancelled while {job.status}")).rowcount
        if not done:   # it changed meanwhile (claimed, or ended): look again
            return self.cancel(job.id)
        return self.get(job.id), job.status

    def reap(self) -> list[Job]:
        """Take back RUNNING jobs whose heartbeat is older than ``stale_s``: PENDING again while they
        have attempts left, else FAILED; ``error`` says which worker stopped and when. Returns them."""
        now = time.time()
        with self.reader.connect() as conn:
            stale = conn.execute(select(jobs).where(jobs.c.status == RUNNING,
                                                    jobs.c.heartbeat < now - self.stale_s)).all()
        taken = []
        for row in stale:
            job = Job.from_row(row)
            retry = job.attempts < job.max_attempts
            reason = (f"worker {job.worker} stopped sending heartbeats {now - job.heartbeat:.0f} s ago "
                      f"(attempt {job.attempts} of {job.max_attempts})" + ("; retrying" if retry else "; giving up"))
            with self.engine.begin() as conn:   # guarded by the heartbeat seen: a live worker's beat wins
                changed = conn.execute(update(jobs).where(
                    jobs.c.id == job.id, jobs.c.status == RUNNING, jobs.c.heartbeat == job.heartbeat).values(
                    status=PENDING if retry else FAILED, worker=None, error=reason,
                    finished_at=None if retry else now)).rowcount
            if changed:
                taken.append(self.get(job.id))
        return taken

    def counts(self) -> dict[str, int]:
        with self.reader.connect() as conn:
            found = dict(conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all())
        return {s: found.get(s, 0) for s in STATUSES}
