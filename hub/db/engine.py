"""Which database a store uses, an SQLAlchemy engine for it, and its faults as one line.

SQLAlchemy does the connecting, pooling and SQL; written here is what it does not do: the
default URL (the store's ``results.db``), taking ``postgresql://`` as psycopg, SQLite's
settings (WAL, foreign keys, a busy timeout, the write lock taken at ``BEGIN IMMEDIATE`` so
two writers queue instead of failing mid-transaction), read-only SQLite engines that never
create or change the file, and telling a user which of their mistakes a driver error is.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from functools import partial
from pathlib import Path
from typing import Iterator

from sqlalchemy import URL, Engine, create_engine, event, exc, make_url
from sqlalchemy.pool import NullPool

from hub.db.sqlite_file import BUSY_TIMEOUT_S, open_readonly, sqlite_fault
from hub.errors import UserError, clean, quote

DEFAULT_FILE = "results.db"
DRIVERS = {"sqlite": "sqlite", "sqlite+pysqlite": "sqlite", "postgresql": "postgresql+psycopg",
           "postgresql+psycopg": "postgresql+psycopg"}
FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DBNAME"
CONNECT_TIMEOUT_S = 10   # an unreachable server is reported after this, not after the OS's minutes

_engines: dict[tuple[str, bool], Engine] = {}


def resolve_url(db: str | None, root: Path) -> URL:
    """The database of a store at ``root``: ``db`` (``--db`` or ``db:``), else ``EVALHUB_DB``, else
    ``root/results.db``; UserError for a malformed URL or a database evalhub does not speak."""
    text = db or os.environ.get("EVALHUB_DB") or ""
    if not text:
        return URL.create("sqlite", database=str(root / DEFAULT_FILE))
    try:
        url = make_url(text)
    except (exc.ArgumentError, ValueError):   # ValueError: a port that is not a number
        raise UserError(f"database URL {quote(text.split('@')[-1])} is malformed; give {FORMS}") from None
    if url.drivername not in DRIVERS:
        raise UserError(f"database URL {shown(url)}: evalhub does not speak {quote(url.drivername)}; give {FORMS}")
    url = url.set(drivername=DRIVERS[url.drivername])
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise UserError(f"database URL {shown(url)} names no file; give sqlite:///PATH (an in-memory database "
                        "would lose every result)")
    return url


def shown(url: URL) -> str:
    """The URL as it may be printed: its password masked."""
    return quote(url.render_as_string(hide_password=True), 200)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL; None for a server database."""
    return Path(url.database) if url.get_backend_name() == "sqlite" else None


def get_engine(url: URL, *, readonly: bool = False) -> Engine:
    """An engine for ``url``, one per URL and mode in a process (a pool for a server database;
    SQLite opens the file on each use, as nothing is gained by holding it open)."""
    key = (url.render_as_string(hide_password=False), readonly)
    if key not in _engines:
        path = sqlite_path(url)
        if path is None:
            _engines[key] = create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        elif readonly:
            _engines[key] = create_engine("sqlite://", creator=partial(open_readonly, path), poolclass=NullPool)
        else:
            _engines[key] = _sqlite_writer(url)
    return _engines[key]


def _sqlite_writer(url: URL) -> Engine:
    engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _settings(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.isolation_level = None   # SQLAlchemy emits BEGIN itself (below), not the sqlite3 module
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")   # the write lock now: a second writer waits its turn

    return engine


@contextlib.contextmanager
def db_faults(url: URL) -> Iterator[None]:
    """A driver's error about the database itself (unreachable, refused, damaged, locked, full), as one
    UserError naming the database and what to do; anything else raises as it is."""
    try:
        yield
    except sqlite3.DatabaseError as error:
        raise sqlite_fault(sqlite_path(url) or Path(str(url.database)), error) from None
    except exc.DBAPIError as error:
        if isinstance(error.orig, sqlite3.DatabaseError):
            raise sqlite_fault(sqlite_path(url) or Path(str(url.database)), error.orig) from None
        fault = server_fault(url, error)
        if fault is None:
            raise
        raise fault from None


def server_fault(url: URL, error: exc.DBAPIError) -> UserError | None:
    """The UserError for a database server's refusal or absence; None when it is not one."""
    text = str(error.orig)
    last = text.strip().splitlines()[-1] if text.strip() else type(error.orig).__name__
    reason = clean(last.split("FATAL:")[-1].strip(), 160)   # the server's own words, without libpq's preamble
    where = shown(url)
    if "password authentication failed" in text or "no password supplied" in text or (
            "role" in text and "does not exist" in text):
        return UserError(f"the database {where} refused the login ({reason}); check the user and password "
                         "in EVALHUB_DB or --db")
    if "database" in text and "does not exist" in text:
        return UserError(f"the database {where} does not exist on its server ({reason}); create it "
                         "(`createdb NAME`) or fix the URL")
    state = getattr(error.orig, "sqlstate", None)
    if state == "42501":   # insufficient_privilege
        return UserError(f"the database {where} refused this user ({reason}); grant it access to evalhub's tables "
                         "or give another user in EVALHUB_DB or --db (nothing was stored)")
    if state in ("25006", "53100"):   # read_only_sql_transaction (a standby), disk_full
        return UserError(f"the database {where} cannot store this ({reason}); use its primary server or free "
                         "space on it, then rerun (nothing was stored)")
    if isinstance(error, exc.OperationalError) or error.connection_invalidated:
        return UserError(f"cannot reach the database {where} ({reason}); check the host, port and that the "
                         "server runs, then rerun (nothing was stored)")
    return None


def dispose_engines() -> None:
    """Close every pooled connection this process holds (after a fork, or when a database goes away)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
