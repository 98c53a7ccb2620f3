"""Bringing a database to this evalhub's schema with Alembic, and reading an older one as it is.

Alembic does the migrating (``command.upgrade`` on the connection a write already holds, so
the upgrade and the write commit together or not at all); written here is what it does not
do: refusing a database stamped by a newer evalhub (never downgrading it), serialising two
first writers on PostgreSQL (an advisory lock; SQLite's writers already queue at BEGIN), and
letting a read-only command read a database that an earlier evalhub wrote without writing to
it: tables added since are empty temporary tables and columns added since read as their
defaults through temporary views (temporary objects shadow the stored ones on both SQLite and
PostgreSQL, and vanish with the read's connection or transaction).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Connection, MetaData, Table, inspect, literal, text
from sqlalchemy.schema import CreateTable

from hub.db.schema import metadata
from hub.errors import UserError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x657661_6C687562   # "evalhub": PostgreSQL's advisory lock for the upgrade


def alembic_config() -> Config:
    """Alembic's config for evalhub's migrations, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@lru_cache(maxsize=1)
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    return scripts().get_current_head()


@lru_cache(maxsize=1)
def known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in scripts().walk_revisions())


def stored_revisions(conn: Connection, name: str) -> set[str]:
    """The revisions the database is stamped with (none: new, or made before Alembic); UserError
    when one is not among this evalhub's (a newer evalhub wrote it)."""
    current = set(MigrationContext.configure(conn).get_current_heads())
    unknown = sorted(current - known_revisions())
    if unknown:
        raise UserError(f"the database {name} was written by a newer evalhub (schema revision "
                        f"{', '.join(unknown)}; this one knows up to {head()}); upgrade evalhub to use it "
                        "(it was left as it is)")
    return current


def upgrade(conn: Connection, name: str) -> None:
    """Bring the database on ``conn`` (inside its write transaction) to the head revision."""
    if stored_revisions(conn, name) == {head()}:
        return
    if conn.dialect.name == "postgresql":   # a second first writer waits here, then finds it done
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        if stored_revisions(conn, name) == {head()}:
            return
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def read_as_current(conn: Connection, name: str) -> bool:
    """Check a database before reading it, and shadow what an older one lacks; False when it has no
    evalhub tables at all (a new database: nothing to read)."""
    if stored_revisions(conn, name) == {head()}:
        return True
    inspector = inspect(conn)
    present = set(inspector.get_table_names())
    if "variants" not in present:
        return False
    stored_schema = "main" if conn.dialect.name == "sqlite" else inspector.default_schema_name
    for table in metadata.sorted_tables:
        if table.name not in present:
            shadow = Table(table.name, MetaData(), *(Column(c.name, c.type) for c in table.columns),
                           prefixes=["TEMPORARY"])
            conn.execute(CreateTable(shadow))
            continue
        have = {c["name"] for c in inspector.get_columns(table.name)}
        added = [c for c in table.columns if c.name not in have]
        if added:
            defaults = ", ".join(f"{_literal(conn, c)} AS {c.name}" for c in added)
            conn.execute(text(f"CREATE TEMPORARY VIEW {table.name} AS SELECT *, {defaults} "
                              f"FROM {stored_schema}.{table.name}"))
    return True


def _literal(conn: Connection, column: Column) -> str:
    """The column's server default as SQL (NULL when it has none)."""
    default = column.server_default.arg if column.server_default is not None else None
    return str(literal(default, column.type).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
