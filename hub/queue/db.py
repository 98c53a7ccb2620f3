"""The database the queue lives in: the store's results database (``EVALHUB_DB`` when set).

One SQLAlchemy engine per URL per process (engines pool their connections). Creating the
``jobs`` table here is a stand-in until the store's migrations create it.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine

from hub.queue.schema import jobs


def db_url(store: Any) -> str:
    """``EVALHUB_DB``, else the store's SQLite file."""
    return os.environ.get("EVALHUB_DB") or f"sqlite:///{store.db_path}"


@functools.lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    if not url.startswith("sqlite"):
        engine = create_engine(url, pool_pre_ping=True)
    else:
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
    return engine


def open_queue(store: Any, *, stale_s: float | None = None, create: bool = True) -> Any:
    """The store's :class:`~hub.queue.jobs.JobQueue`; ``stale_s`` default ``$EVALHUB_QUEUE_STALE_S`` or 60.
    ``create``: make the database and the table when missing; else None when there is no queue yet."""
    from sqlalchemy import inspect

    from hub.queue.jobs import JobQueue

    url = db_url(store)
    if url.startswith("sqlite") and not store.db_path.exists():
        if not create:
            return None
        with store.connect():   # the store's own tables first: a store is never just a queue
            pass
    engine = engine_for(url)
    if create:
        jobs.create(engine, checkfirst=True)
    elif not inspect(engine).has_table("jobs"):
        return None
    stale = stale_s if stale_s is not None else float(os.environ.get("EVALHUB_QUEUE_STALE_S") or 60)
    return JobQueue(engine, stale_s=stale)
