"""The results database's tables, written once with SQLAlchemy Core for SQLite and PostgreSQL.

Metrics are in long form (run, metric, value, confidence interval), so a new evaluator needs
no schema change. Records (``record``, ``versions``, ``suite_steps``, ``files``, ``data``) are
JSON text, read back by :mod:`hub.records`' dataclasses. A change here is also an Alembic
revision (see :mod:`hub.db`); ``tests/test_store_db.py`` checks that the migrations build
exactly these tables.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, Table, Text

metadata = MetaData()

variants = Table(
    "variants", metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False, server_default="model"),
    Column("parent_id", Text),
    Column("task", Text, nullable=False),
    Column("base_model", Text, nullable=False),
    Column("peft_method", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("record", Text, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", Text, primary_key=True),
    Column("variant_id", Text, ForeignKey("variants.id"), nullable=False),
    Column("engine", Text, nullable=False),
    Column("suite", Text, nullable=False),
    Column("dataset", Text, nullable=False),
    Column("split", Text, nullable=False),
    Column("data_hash", Text, nullable=False),
    Column("config_hash", Text, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("versions", Text, nullable=False),
    Column("n_examples", Integer, nullable=False),
    Column("duration_s", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("suite_steps", Text, nullable=False, server_default="[]"),
    Index("runs_by_variant", "variant_id"),
)

metrics = Table(
    "metrics", metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("metric", Text, primary_key=True),
    Column("value", Float, nullable=False),
    Column("ci_low", Float),
    Column("ci_high", Float),
    Column("higher_is_better", Integer, nullable=False, server_default="1"),
)

predictions = Table(
    "predictions", metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("label", Text),
    Column("prediction", Text, nullable=False),
    Column("probabilities", Text, nullable=False),
)

records = Table(
    "records", metadata,
    Column("run_id", Text, ForeignKey("runs.id"), primary_key=True),
    Column("evaluator", Text, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("data", Text, nullable=False),
)

engines = Table(
    "engines", metadata,
    Column("id", Text, primary_key=True),
    Column("variant_id", Text, ForeignKey("variants.id"), nullable=False),
    Column("backend", Text, nullable=False),
    Column("precision", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("record", Text, nullable=False),
)

pushes = Table(
    "pushes", metadata,
    Column("variant_id", Text, ForeignKey("variants.id"), nullable=False),
    Column("repo_id", Text, nullable=False),
    Column("revision", Text, nullable=False),
    Column("commit_oid", Text),
    Column("url", Text, nullable=False),
    Column("pr_url", Text),
    Column("files", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
