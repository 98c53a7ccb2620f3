"""The results database's file: its schema, opening it (read-only too), and its faults as one line.

SQLite itself does the storing; what is written here is what it does not: reading a
database made by an earlier evalhub without writing to it (temporary tables and views
shadow what the file lacks), reading one on a read-only folder, telling a damaged,
locked, full or read-only file apart in one sentence each, and probing that a folder
takes a file before a command starts its work.
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

SCHEMA = """
CREATE TABLE IF NOT EXISTS variants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'model',
    parent_id TEXT, task TEXT NOT NULL, base_model TEXT NOT NULL, peft_method TEXT NOT NULL,
    created_at REAL NOT NULL, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, variant_id TEXT NOT NULL REFERENCES variants(id), engine TEXT NOT NULL,
    suite TEXT NOT NULL, dataset TEXT NOT NULL, split TEXT NOT NULL, data_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL, seed INTEGER NOT NULL, versions TEXT NOT NULL,
    n_examples INTEGER NOT NULL, duration_s REAL NOT NULL, created_at REAL NOT NULL,
    suite_steps TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id), metric TEXT NOT NULL, value REAL NOT NULL,
    ci_low REAL, ci_high REAL, higher_is_better INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (run_id, metric)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL REFERENCES runs(id), idx INTEGER NOT NULL, text TEXT NOT NULL,
    label TEXT, prediction TEXT NOT NULL, probabilities TEXT NOT NULL,
    PRIMARY KEY (run_id, idx)
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL REFERENCES runs(id), evaluator TEXT NOT NULL, idx INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (run_id, evaluator, idx)
);
CREATE TABLE IF NOT EXISTS engines (
    id TEXT PRIMARY KEY, variant_id TEXT NOT NULL REFERENCES variants(id), backend TEXT NOT NULL,
    precision TEXT NOT NULL, created_at REAL NOT NULL, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pushes (
    variant_id TEXT NOT NULL REFERENCES variants(id), repo_id TEXT NOT NULL, revision TEXT NOT NULL,
    commit_oid TEXT, url TEXT NOT NULL, pr_url TEXT, files TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_variant ON runs(variant_id);
"""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an earlier evalhub up to SCHEMA (columns added since, with defaults)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if "suite_steps" not in columns:   # runs from before suites were recorded: what they ran is unknown
        try:
            conn.execute("ALTER TABLE runs ADD COLUMN suite_steps TEXT NOT NULL DEFAULT '[]'")
        except sqlite3.OperationalError as exc:   # another process added it first
            if "duplicate column" not in str(exc):
                raise


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def shim_older_schema(conn: sqlite3.Connection) -> None:
    """Let a read-only connection read a database made by an earlier evalhub as if it were current:
    tables added since are empty temporary tables, columns added since read as their defaults
    (temporary objects shadow the file's; nothing is written to it; the next write migrates)."""
    present = table_names(conn)
    for statement in SCHEMA.split(";"):
        words = statement.split()
        if words[:5] == ["CREATE", "TABLE", "IF", "NOT", "EXISTS"] and words[5] not in present:
            conn.execute(statement.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
    if "runs" in present and "suite_steps" not in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}:
        conn.execute("CREATE TEMP VIEW runs AS SELECT *, '[]' AS suite_steps FROM main.runs")


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
    """A read-only connection to ``db_path``; it never creates the file or changes it."""
    uri = f"file:{url_quote(str(db_path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=30)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        # WAL needs a -shm file beside the database; on a read-only folder none can be made,
        # so read the file as it stands (no writer can be running where nothing is writable).
        if os.access(db_path.parent, os.W_OK):
            raise
        return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)


@contextlib.contextmanager
def sqlite_faults(db_path: Path) -> Iterator[None]:
    """SQLite's errors about the file itself, as one line naming it and what to do."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and "locked" in text:
            raise UserError(f"{clean(db_path, 200)} is locked by another evalhub process for over 30 s; "
                            "retry when it is done") from None
        if "disk is full" in text or "disk I/O" in text:
            raise UserError(f"{clean(db_path, 200)}: {text}; free space on its disk and rerun "
                            "(the run was not stored, nothing stored before it changed)") from None
        if "readonly" in text or "read-only" in text:
            raise UserError(f"{clean(db_path, 200)} is read-only here; this command stores results, "
                            "so run it where the store is writable (or give --home another store)") from None
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
            raise UserError(f"{clean(db_path, 200)} cannot be opened ({text}); check that its folder "
                            "exists and is readable") from None
        if isinstance(exc, sqlite3.OperationalError) and "no such" not in text:
            raise
        raise UserError(f"{clean(db_path, 200)} is damaged ({clean(text, 120)}); restore it from a backup "
                        "or move it aside to start a new store (the variant folders are kept)") from None
