"""The SQLite results file: opening it read-only, probing it for writing, and its faults as one line.

SQLite and SQLAlchemy do the storing; what is written here is what they do not: reading a
database on a read-only folder, taking the write lock to probe a file before a command
starts its work, telling a damaged, locked, full or read-only file apart in one sentence
each, and probing that a folder takes a file.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import quote as url_quote

from hub.errors import UserError, clean

BUSY_TIMEOUT_S = 30   # how long a writer waits for another one's lock before "is locked"

def probe_folder(folder: Path) -> None:
    """UserError unless a file can be made in ``folder`` (or in the nearest folder above it that exists)."""
    target = next(p for p in (folder, *folder.resolve().parents) if p.exists())
    try:
        with tempfile.NamedTemporaryFile(dir=target, prefix=".evalhub-probe-"):
            pass
    except OSError as exc:
        raise UserError(f"{clean(target, 200)} is not writable ({exc.strerror or type(exc).__name__}); this command "
                        "stores what it makes: fix its permissions or give --home another store") from None


def open_readonly(db_path: Path) -> sqlite3.Connection:
    """A read-only connection to ``db_path`` (autocommit); it never creates the file or changes it."""
    uri = f"file:{url_quote(str(db_path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        # WAL needs a -shm file beside the database; on a read-only folder none can be made,
        # so read the file as it stands (no writer can be running where nothing is writable).
        if os.access(db_path.parent, os.W_OK):
            raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)


def probe_write_lock(db_path: Path) -> None:
    """Take the file's write lock and let it go, changing nothing: fails now on a read-only or locked file."""
    with sqlite_faults(db_path):
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE write_probe (x)")
            conn.execute("ROLLBACK")
        finally:
            conn.close()


@contextlib.contextmanager
def sqlite_faults(db_path: Path) -> Iterator[None]:
    """SQLite's errors about the file itself, as one line naming it and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise sqlite_fault(db_path, exc) from None


def sqlite_fault(db_path: Path, exc: sqlite3.DatabaseError) -> Exception:
    """The UserError for an error SQLite raised about the file itself; ``exc`` itself when it is a bug."""
    text, where = str(exc), clean(db_path, 200)
    operational = isinstance(exc, sqlite3.OperationalError)
    if operational and "locked" in text:
        return UserError(f"{where} is locked by another evalhub process for over {BUSY_TIMEOUT_S} s; "
                         "retry when it is done")
    if "disk is full" in text or "disk I/O" in text:
        return UserError(f"{where}: {text}; free space on its disk and rerun "
                         "(the run was not stored, nothing stored before it changed)")
    if "readonly" in text or "read-only" in text:
        return UserError(f"{where} is read-only here; this command stores results, "
                         "so run it where the store is writable (or give --home another store)")
    if operational and "unable to open" in text:
        return UserError(f"{where} cannot be opened ({text}); check that its folder exists and is readable")
    if operational and "no such" not in text:
        return exc
    return UserError(f"{where} is damaged ({clean(text, 120)}); restore it from a backup "
                     "or move it aside to start a new store (the variant folders are kept)")
