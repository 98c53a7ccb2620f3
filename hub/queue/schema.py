"""The ``jobs`` table (SQLAlchemy Core); the states and kinds are in :mod:`hub.queue.states`.

A job is one piece of work a worker claims: an evaluation of a variant (``eval``) or an
engine build (``build-engine``). Its identity, the unique key ``jobs_same_work``, is what
it would make: (kind, variant, engine, suite, split, data hash). A second submission of the
same work returns the first job instead of queuing it twice. Key columns are ``NOT NULL``
with ``''`` for "none" (a NULL would make every row unique on both backends).

Times are seconds since the epoch as floats, as in the rest of the results database. The table
is created by the Alembic revision ``0002`` (``hub/db/migrations/versions/0002_jobs.py``), and
is on :mod:`hub.db.schema`'s ``MetaData`` so the check that the migrations build exactly the
schema covers it too.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from hub.db.schema import metadata   # one MetaData for the whole database: the migrations are checked against it

jobs = Table(
    "jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("args", JSON, nullable=False),                    # the command's options, as a mapping
    Column("status", String(16), nullable=False),
    Column("submitted_by", String(200), nullable=False, server_default=""),
    Column("priority", Integer, nullable=False, server_default="0"),   # higher runs first
    Column("worker", String(200)),                           # host:pid of the worker that holds it
    Column("heartbeat", Float),                              # last sign of life of that worker
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False, server_default="3"),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("result_id", String(80)),                         # the run or engine the job made
    # what the job makes (the duplicate key)
    Column("variant_id", String(200), nullable=False),
    Column("engine", String(200), nullable=False, server_default=""),
    Column("suite", String(200), nullable=False, server_default=""),
    Column("split", String(64), nullable=False, server_default=""),
    Column("data_hash", String(64), nullable=False, server_default=""),
    UniqueConstraint("kind", "variant_id", "engine", "suite", "split", "data_hash", name="jobs_same_work"),
    Index("jobs_claim_order", "status", "priority", "created_at"),
)
