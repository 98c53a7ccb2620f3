"""Queue semantics on SQLite and PostgreSQL: racing claims, stale heartbeats, duplicates, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hub.errors import UserError
from hub.queue.jobs import JobQueue

KEY = {"variant_id": "v1", "engine": "", "suite": "default", "split": "test", "data_hash": "abc"}


def make_queue(url: str, stale_s: float = 60.0) -> JobQueue:
    """The queue of a store whose results database is ``url`` (the conftest's ``db_url``: SQLite, PostgreSQL)."""
    from hub.queue.db import open_queue
    from hub.store import Store

    return open_queue(Store(Path(url.split("///")[-1]).parent if url.startswith("sqlite") else None, db=url),
                      stale_s=stale_s)


def submit(queue: JobQueue, n: int = 0, **kwargs):
    return queue.submit("eval", {"suite": "default"}, {**KEY, "variant_id": f"v{n}"}, **kwargs)


def test_racing_workers_claim_each_job_exactly_once(db_url):
    queue = make_queue(db_url)
    submit(queue)
    claimers = [make_queue(db_url) for _ in range(4)]   # one connection each: as separate workers
    gate = threading.Barrier(len(claimers))
    got: list = []

    def claim(q: JobQueue, name: str) -> None:
        gate.wait()
        got.append(q.claim(name))

    threads = [threading.Thread(target=claim, args=(q, f"w{i}")) for i, q in enumerate(claimers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [job for job in got if job is not None]
    assert len(winners) == 1 and winners[0].status == "RUNNING" and winners[0].attempts == 1

    for n in range(1, 25):
        submit(queue, n)
    taken: list[str] = []

    def drain(q: JobQueue, name: str) -> None:
        gate.wait()
        while (job := q.claim(name)) is not None:
            taken.append(job.id)

    threads = [threading.Thread(target=drain, args=(q, f"w{i}")) for i, q in enumerate(claimers)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(taken) == len(set(taken)) == 24
    assert queue.counts()["RUNNING"] == 25 and queue.counts()["PENDING"] == 0


def test_priority_then_age_decides_the_next_job(db_url):
    queue = make_queue(db_url)
    low, _ = submit(queue, 1)
    high, _ = submit(queue, 2, priority=5)
    assert [queue.claim("w").id, queue.claim("w").id, queue.claim("w")] == [high.id, low.id, None]


def test_stale_heartbeat_returns_the_job_to_pending_then_fails_it_at_the_limit(db_url):
    queue = make_queue(db_url, stale_s=0.2)
    job, _ = submit(queue, max_attempts=2)
    first = queue.claim("w-dead")
    assert queue.heartbeat([first.id], "w-dead") == {first.id} and queue.reap() == []   # beating: kept
    time.sleep(0.3)
    (back,) = queue.reap()
    assert back.status == "PENDING" and back.worker is None
    assert "w-dead stopped sending heartbeats" in back.error and "(attempt 1 of 2); retrying" in back.error
    assert not queue.finish(job.id, "w-dead", "run-late")   # the old worker lost it: its result is not recorded
    second = queue.claim("w-2")
    assert second.id == job.id and second.attempts == 2
    time.sleep(0.3)
    (failed,) = queue.reap()
    assert failed.status == "FAILED" and "(attempt 2 of 2); giving up" in failed.error and failed.finished_at


def test_a_failed_run_is_not_retried_but_a_dead_worker_is(db_url):
    queue = make_queue(db_url)
    submit(queue, 1)
    submit(queue, 2)
    a, b = queue.claim("w"), queue.claim("w")
    assert queue.fail(a.id, "w", "ValueError: bad data") == "FAILED"
    assert queue.fail(b.id, "w", "node died", retry=True) == "PENDING"
    assert queue.release(queue.claim("w").id, "w", "cluster went away")
    assert queue.get(b.id).attempts == 1   # a release does not count the attempt
    assert queue.fail(a.id, "w", "again") is None   # no longer held


def test_duplicate_submission_returns_the_existing_job_and_a_failed_one_is_resubmitted(db_url):
    queue = make_queue(db_url)
    job, how = submit(queue)
    again, how_again = submit(queue)
    assert (how, how_again, again.id) == ("created", "exists", job.id)
    other, how_other = queue.submit("eval", {}, {**KEY, "suite": "robustness"})
    assert how_other == "created" and other.id != job.id
    queue.fail(queue.claim("w").id, "w", "boom")
    back, how_back = submit(queue)
    assert (back.id, how_back, back.status, back.attempts, back.error) == (job.id, "resubmitted", "PENDING", 0, None)
    assert len(queue.list()) == 2


def test_cancel_pending_at_once_and_running_at_the_next_heartbeat(db_url):
    queue = make_queue(db_url)
    pending, _ = submit(queue, 1)
    running, _ = submit(queue, 2, priority=1)
    assert queue.claim("w").id == running.id
    job, before = queue.cancel(pending.id[:9])   # a unique start of the id
    assert (job.status, before) == ("CANCELLED", "PENDING")
    job, before = queue.cancel(running.id)
    assert (job.status, before) == ("CANCELLED", "RUNNING")
    assert queue.heartbeat([running.id], "w") == set()   # the worker learns it at its next beat
    assert not queue.finish(running.id, "w", "run-x")
    with pytest.raises(UserError, match="already ended"):
        queue.cancel(running.id)
    with pytest.raises(UserError, match="no job 'job-nope'"):
        queue.get("job-nope")
    assert queue.claim("w") is None
