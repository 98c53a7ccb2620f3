"""The queue of a store: the ``jobs`` table in the store's results database (:mod:`hub.db`).

The engines are :func:`hub.db.engine.get_engine`'s (one per URL per process; on SQLite every
transaction of the writing engine starts with ``BEGIN IMMEDIATE``), and the table comes with
the schema: the store's first write upgrades the database to the head revision, which includes
``0002`` (the jobs table).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import inspect


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
    return JobQueue(get_engine(store.db.url), stale_s=stale, reader=get_engine(store.db.url, readonly=True))
