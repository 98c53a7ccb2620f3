"""The queue of a store: the ``jobs`` table in the store's results database (:mod:`hub.db`).

The engines are :mod:`hub.db.engine`'s (on SQLite every transaction of the writing engine starts
with ``BEGIN IMMEDIATE``), and the table comes with the schema: the store's first write upgrades
the database to the head revision, which includes ``0002`` (the jobs table).

One difference, on SQLite only: the queue writes through its own engine, with the store's writer
settings (WAL, foreign keys, ``BEGIN IMMEDIATE``) plus two: it keeps its connections open (the
store's writer opens one per transaction, and closing the last connection of a WAL database
checkpoints it, an fsync), and it commits with ``PRAGMA synchronous=NORMAL``, which in WAL mode
keeps the database consistent on a crash and skips the fsync of every commit. On these machines'
disks each fsync is 10-30 ms: with them a claim and a finish took ~55 ms, over the budget of 50 ms
a job. What a power cut can lose is the last queue changes, never a run: a job whose FINISHED was
lost runs again and finds its run by its id (:mod:`hub.queue.execute`); a lost claim is a PENDING
job again. The results themselves keep the store's full durability.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, inspect


@functools.lru_cache(maxsize=8)
def _sqlite_queue_writer(url: URL) -> Engine:
    from hub.db.sqlite_file import BUSY_TIMEOUT_S

    engine = create_engine(url, pool_size=2, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _settings(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None   # SQLAlchemy emits BEGIN itself (below), as the store's writer does
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def open_queue(store: Any, *, stale_s: float | None = None, create: bool = True) -> Any:
    """The store's :class:`~hub.queue.jobs.JobQueue`; ``stale_s`` default ``$EVALHUB_QUEUE_STALE_S`` or 60.
    ``create``: make the database (and upgrade its schema) when needed; else None when there is no
    queue yet, and nothing is written."""
    from hub.db.engine import db_faults, get_engine
    from hub.queue.jobs import JobQueue

    store = getattr(store, "_store", store)   # an app's StoreView: its store's queue
    if create:
        with store.connect():   # creates the database, or brings it to this evalhub's schema
            pass
    else:
        with store.read() as conn:
            if conn is None:
                return None
        with db_faults(store.db.url):
            if not inspect(get_engine(store.db.url, readonly=True)).has_table("jobs"):
                return None   # a database from before the queue: no job was ever submitted to it
    stale = stale_s if stale_s is not None else float(os.environ.get("EVALHUB_QUEUE_STALE_S") or 60)
    writer = _sqlite_queue_writer(store.db.url) if store.db.is_file else get_engine(store.db.url)
    return JobQueue(writer, stale_s=stale, reader=get_engine(store.db.url, readonly=True))
