"""One results database, as the store uses it: a write transaction and a read.

A write is one transaction (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the server's) that first
brings the schema to this evalhub's revision, so a run commits whole, with its metrics,
predictions and records, or not at all, on either backend. A read never writes: it refuses a
database from a newer evalhub, reads an older one as it is, and rolls back whatever it did.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from sqlalchemy import URL, Connection, func, select

from hub.db.engine import db_faults, get_engine, shown, sqlite_path
from hub.db.migrate import read_as_current, upgrade
from hub.db.schema import engines, pushes, runs, variants
from hub.db.sqlite_file import probe_write_lock


class Database:
    """The results database at ``url`` (a resolved URL: :func:`hub.db.engine.resolve_url`)."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.path: Path | None = sqlite_path(url)   # the SQLite file; None for a server database
        self.name = str(self.path) if self.path is not None else shown(url)

    @property
    def is_file(self) -> bool:
        return self.path is not None

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A connection in one transaction at the current schema; commits on success, rolls back on
        any exception. Creates the database's tables on first use."""
        with db_faults(self.url), get_engine(self.url).connect() as conn:
            with conn.begin():
                upgrade(conn, self.name)
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection | None]:
        """A connection that reads the database as if it were at the current schema, or None when it
        holds no evalhub tables; nothing it does is kept."""
        with db_faults(self.url), get_engine(self.url, readonly=True).connect() as conn:
            try:
                yield conn if read_as_current(conn, self.name) else None
            finally:
                conn.rollback()

    def stamp(self) -> str:
        """Changes whenever the results do; cheap (SQLite: the file's and its WAL's size and mtime;
        a server: each table's row count and newest row)."""
        if self.path is None:
            with self.read() as conn:
                if conn is None:
                    return "-"
                counts = [conn.execute(select(func.count(), func.max(t.c.created_at))).one()
                          for t in (variants, runs, engines, pushes)]
            return "/".join(f"{n}:{newest}" for n, newest in counts)
        parts = []
        for suffix in ("", "-wal"):
            try:
                st = os.stat(f"{self.path}{suffix}")
                parts.append(f"{st.st_size}:{st.st_mtime_ns}")
            except OSError:
                parts.append("-")
        return "/".join(parts)

    def probe_write(self) -> None:
        """Fail now, not after the work, where this command could not write (SQLite: take the file's
        write lock; a server: connect and check the schema's revision)."""
        if self.path is not None:
            if self.path.exists():
                probe_write_lock(self.path)
            return
        with self.read():
            pass
