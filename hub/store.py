"""The store: variants and their files, and a SQLite results database.

Layout of ``EVALHUB_HOME`` (``./.evalhub`` by default)::

    variants/<id>/           model/ (merged or full weights, safetensors), adapter/, variant.json
    variants/<id>/engines/<engine-id>/   an inference engine: its files, engine.json, reports
    work/<config-hash>/      checkpoints and tracker logs of a training run (for --resume)
    staging/                 folders being written; renamed into place when complete
    results.db               SQLite in WAL mode

Metrics are stored in long form (run, metric, value, confidence interval), so a new
evaluator needs no schema change. A run is committed with all its metrics and
per-example predictions in one transaction, or not at all.

The database is the only source of truth. ``variant.json`` and ``engine.json`` are
copies of the records, written beside the files for people and for tools that get the
folder alone (a copied or published variant); evalhub never reads them back, so an
edited copy changes nothing. Folders are written under ``staging/`` and renamed into
place whole; a folder appears before its row is committed and is removed when the
commit fails, so a crash leaves at most an unregistered folder, never a row without one.
A command that stores something probes first (:meth:`Store.check_writable`) that the
folders and the database are writable and the disk has room; a read-only command opens
the database read-only and never creates or repairs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from hub.datafiles import env_megabytes
from hub.errors import UserError, clean, did_you_mean, quote, quote_list
from hub.fsutil import staged_dir
from hub.results_db import (SCHEMA, migrate, open_readonly, probe_folder, shim_older_schema, sqlite_faults,
                             table_names)

@dataclass
class VariantRecord:
    """A trained model with its lineage; a row of the DB (``variant.json`` is a copy never read back)."""

    id: str
    name: str
    task: str
    base_model: str
    peft_method: str
    labels: list[str]
    dataset: dict[str, Any]          # source, columns, split hashes and sizes, report
    peft_config: dict[str, Any]
    hyperparameters: dict[str, Any]
    run_config: dict[str, Any]
    config_hash: str
    seed: int
    versions: dict[str, str]
    parent_id: str | None = None
    kind: str = "model"
    has_merged: bool = True         # model/ holds full weights; else base + adapter/
    has_adapter: bool = False
    train_summary: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class RunRecord:
    variant_id: str
    engine: str
    suite: str
    dataset: str
    split: str
    data_hash: str
    config_hash: str
    seed: int
    versions: dict[str, str]
    n_examples: int
    duration_s: float
    # one {"evaluator", "options" (as the suite set them), "metrics" (the names it wrote)} per step
    suite_steps: list = field(default_factory=list)
    id: str = field(default_factory=lambda: "run-" + uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)


def describe_steps(steps: list[dict]) -> list[str]:
    """``evaluator k=v, k=v`` for each suite step that set options (what a run changed from defaults)."""
    return [f"{step['evaluator']} " + ", ".join(f"{k}={v}" for k, v in step["options"].items())
            for step in steps if isinstance(step.get("options"), dict) and step["options"]]


def _load_steps(text: str) -> list[dict]:
    """A run's ``suite_steps`` column; entries of another shape (not written by this evalhub) are skipped."""
    try:
        steps = json.loads(text)
    except ValueError:
        return []
    return [step for step in steps if isinstance(step, dict) and "evaluator" in step] if isinstance(steps, list) else []


def match_variants(variants: list[VariantRecord], ref: str) -> list[VariantRecord]:
    """The variants ``ref`` names: by id or name exactly, else by id prefix (several: ambiguous)."""
    exact = [v for v in variants if ref in (v.id, v.name)]
    return exact or [v for v in variants if v.id.startswith(ref)]


def default_home() -> Path:
    return Path(os.environ.get("EVALHUB_HOME") or ".evalhub")


MIN_FREE_MB = 256    # a variant of the embedded MiniLM is ~90 MB, an engine ~25-90 MB


class Store:
    """Files and results of every variant. Cheap to construct; the DB is created on first write.

    Reads never write: a read-only command opens the database read-only and never creates
    it, so an empty, missing or damaged ``results.db`` beside variant folders is reported,
    not silently replaced by an empty one.
    """

    def __init__(self, home: str | Path | None = None) -> None:
        self.root = Path(home) if home else default_home()
        self.variants_dir = self.root / "variants"
        self.staging_dir = self.root / "staging"
        self.db_path = self.root / "results.db"

    # -- database -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A writing connection in WAL mode; commits on success, rolls back on any exception.

        Creates the database on first use; commands call :meth:`check_writable` first, which
        refuses to start over a lost database.
        """
        self._check_db_path()
        self.root.mkdir(parents=True, exist_ok=True)
        with sqlite_faults(self.db_path):
            conn = sqlite3.connect(self.db_path, timeout=30)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(SCHEMA)
                migrate(conn)
                conn.row_factory = sqlite3.Row
                with conn:  # one transaction
                    yield conn
            finally:
                conn.close()

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection, or None when there is no database yet (an empty store).

        Never creates or changes the file. Columns added by later schema versions read as
        their defaults through temporary views, so an older database is read as it is.
        """
        self._check_db_path()
        if not self.db_path.exists() or self.db_path.stat().st_size == 0:
            if self._has_variant_folders():
                state = "is missing" if not self.db_path.exists() else "is empty (0 bytes)"
                raise UserError(self._lost_db_message(state))
            yield None
            return
        with sqlite_faults(self.db_path):
            conn = open_readonly(self.db_path)
            try:
                if not self._has_schema(conn):
                    raise UserError(self._lost_db_message("holds no evalhub tables")
                                    if self._has_variant_folders() else
                                    f"{self.db_path} is not an evalhub results database; move it aside or "
                                    "give --home another store")
                shim_older_schema(conn)
                conn.row_factory = sqlite3.Row
                yield conn
            finally:
                conn.close()

    @staticmethod
    def _has_schema(conn: sqlite3.Connection) -> bool:
        return "variants" in table_names(conn)

    def _check_db_path(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"the store {clean(self.root, 200)} is a file, not a folder; give --home "
                            "(or EVALHUB_HOME) a folder")
        if self.db_path.is_dir():
            raise UserError(f"{clean(self.db_path, 200)} is a folder, not a database; move it aside "
                            "(the store's results live in that one file)")

    def _has_variant_folders(self) -> bool:
        return self.variants_dir.is_dir() and any(p.is_dir() for p in self.variants_dir.iterdir())

    def _lost_db_message(self, state: str) -> str:
        folders = sum(p.is_dir() for p in self.variants_dir.iterdir())
        return (f"{clean(self.db_path, 200)} {state}, but {clean(self.variants_dir, 200)} holds {folders} variant "
                "folders whose rows and results were in it; restore results.db from a backup, or move the store "
                "aside and start a new one (evalhub did not touch either)")

    def check_writable(self) -> None:
        """Probe, before any work, that this command can store what it makes; UserError if not.

        Each folder the store writes (or, where it does not exist yet, the folder it would be
        made in) is checked by writing a file into it; an existing database by taking its
        write lock; the disk by its free space (``EVALHUB_MIN_FREE_MB``). Nothing is left behind.
        """
        with self.read():   # a missing, empty or damaged database beside variant folders is reported, not replaced
            pass
        for folder in (self.root, self.variants_dir, self.staging_dir):
            if folder.exists() and not folder.is_dir():
                raise UserError(f"{clean(folder, 200)} is a file, where the store keeps a folder; move it aside")
            probe_folder(folder)
        if self.db_path.exists():
            with sqlite_faults(self.db_path):
                conn = sqlite3.connect(self.db_path, timeout=30)
                try:
                    conn.execute("BEGIN IMMEDIATE")   # the write lock: fails now on a read-only file
                    conn.execute("CREATE TABLE write_probe (x)")
                    conn.rollback()
                finally:
                    conn.close()
        existing = next(p for p in (self.root, *self.root.resolve().parents) if p.exists())
        free_mb = shutil.disk_usage(existing).free / 2**20
        need = env_megabytes("EVALHUB_MIN_FREE_MB", MIN_FREE_MB, zero_ok=True)
        if free_mb < need:
            raise UserError(f"only {free_mb:.0f} MB free on the disk of {clean(self.root, 200)}, under the {need:g} MB "
                            "a command that stores models needs; free space (or lower EVALHUB_MIN_FREE_MB)")

    # -- variants -----------------------------------------------------------------------
    def variant_path(self, variant_id: str) -> Path:
        return self.variants_dir / variant_id

    def work_dir(self, config_hash: str) -> Path:
        return self.root / "work" / config_hash

    @contextlib.contextmanager
    def stage_variant(self, variant_id: str) -> Iterator[Path]:
        """Yield a folder to write the variant's files into; it appears only when complete."""
        with staged_dir(self.variant_path(variant_id), self.staging_dir) as tmp:
            yield tmp

    def add_variant(self, record: VariantRecord) -> None:
        """Register a variant whose folder is already in place; remove the folder if this fails."""
        try:
            with self.connect() as conn:
                conn.execute(
                    "INSERT INTO variants VALUES (?,?,?,?,?,?,?,?,?)",
                    (record.id, record.name, record.kind, record.parent_id, record.task,
                     record.base_model, record.peft_method, record.created_at, record.to_json()))
        except BaseException:
            shutil.rmtree(self.variant_path(record.id), ignore_errors=True)
            raise

    def list_variants(self) -> list[VariantRecord]:
        with self.read() as conn:
            rows = conn.execute("SELECT record FROM variants ORDER BY created_at").fetchall() if conn else []
        return [self._record(VariantRecord, r["record"], "variant") for r in rows]

    def _record(self, cls: type, text: str, kind: str) -> Any:
        """A stored JSON record as ``cls``; a record this evalhub cannot read is one UserError."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UserError(f"{clean(self.db_path, 200)} holds a damaged {kind} record; restore the file from a backup")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise UserError(f"{clean(self.db_path, 200)}: a {kind} record has fields this evalhub does not know "
                            f"({quote_list(extra, 4)}): it was written by a newer evalhub; upgrade evalhub to read "
                            "this store")
        try:
            return cls(**data)
        except TypeError:   # a required field is missing
            raise UserError(f"{clean(self.db_path, 200)} holds a {kind} record without all its fields; restore the "
                            "file from a backup") from None

    def get_variant(self, ref: str) -> VariantRecord:
        """Look a variant up by id, unique id prefix or name; UserError when there is none."""
        variants = self.list_variants()
        matches = match_variants(variants, ref)
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"variant {quote(ref)} is ambiguous: {quote_list([v.id for v in matches], 8, 60)}; "
                            "give more of the id")
        ids = [v.id for v in variants]
        hint = did_you_mean(ref, ids + [v.name for v in variants])
        known = f"; known: {', '.join(ids[-8:])}" if ids else "; the store is empty (run `evalhub train` or `evalhub demo`)"
        raise UserError(f"no variant {quote(ref)} in {clean(self.root, 200)}{hint}{known}")

    def variant_folder(self, record: VariantRecord) -> Path:
        """The variant's folder; UserError when its row exists but the folder is gone."""
        folder = self.variant_path(record.id)
        if not folder.is_dir():
            raise UserError(f"variant {record.id}: its folder {clean(folder, 200)} is missing from the store; restore "
                            f"it from a backup, or remove the variant and its results with `evalhub remove {record.id}`")
        return folder

    def remove_variant(self, record: VariantRecord) -> dict[str, int]:
        """Delete a variant's rows (runs, metrics, predictions, records, engines, pushes) in one transaction,
        then its folder. Returns how many rows of each table went."""
        counts = {}
        with self.connect() as conn:
            runs = [r[0] for r in conn.execute("SELECT id FROM runs WHERE variant_id = ?", (record.id,))]
            for table in ("metrics", "predictions", "records"):
                counts[table] = sum(conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run,)).rowcount
                                    for run in runs)
            counts["runs"] = conn.execute("DELETE FROM runs WHERE variant_id = ?", (record.id,)).rowcount
            counts["engines"] = conn.execute("DELETE FROM engines WHERE variant_id = ?", (record.id,)).rowcount
            counts["pushes"] = conn.execute("DELETE FROM pushes WHERE variant_id = ?", (record.id,)).rowcount
            conn.execute("DELETE FROM variants WHERE id = ?", (record.id,))
        # the rows are gone for good; a folder left by an interrupted removal is only disk space
        folder = self.variant_path(record.id)
        if folder.exists():
            trash = self.staging_dir / f"removed-{record.id}-{uuid.uuid4().hex[:6]}"
            self.staging_dir.mkdir(parents=True, exist_ok=True)
            os.replace(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)
        return counts

    # -- engines --------------------------------------------------------------------------
    def engine_path(self, variant_id: str, engine_id: str) -> Path:
        return self.variant_path(variant_id) / "engines" / engine_id

    @contextlib.contextmanager
    def stage_engine(self, variant_id: str, engine_id: str) -> Iterator[Path]:
        with staged_dir(self.engine_path(variant_id, engine_id), self.staging_dir) as tmp:
            yield tmp

    def add_engine(self, record: Any, run: RunRecord | None = None, metrics: Iterable[Any] = (),
                   predictions: Iterable[dict] = (), records: dict[str, list[dict]] | None = None) -> None:
        """Register a built engine (folder already in place) with its build run, all or nothing."""
        try:
            with self.connect() as conn:
                conn.execute("INSERT INTO engines VALUES (?,?,?,?,?,?)", (
                    record.id, record.variant_id, record.backend, record.precision, record.created_at,
                    json.dumps(asdict(record), sort_keys=True, default=str)))
                if run is not None:
                    self._insert_run(conn, run, metrics, predictions, records)
        except BaseException:
            shutil.rmtree(self.engine_path(record.variant_id, record.id), ignore_errors=True)
            raise

    def list_engines(self, variant_id: str | None = None) -> list[Any]:
        from hub.engines.base import EngineRecord

        query, args = "SELECT record FROM engines", ()
        if variant_id:
            query, args = query + " WHERE variant_id = ?", (variant_id,)
        with self.read() as conn:
            rows = conn.execute(query + " ORDER BY created_at", args).fetchall() if conn else []
        return [self._record(EngineRecord, r["record"], "engine") for r in rows]

    def best_engine(self, variant_id: str) -> Any | None:
        """The variant's newest engine that passed parity (what the demo serves), or None."""
        passed = [e for e in self.list_engines(variant_id) if (e.parity or {}).get("passed")]
        return passed[-1] if passed else None

    def get_engine(self, ref: str, variant_id: str | None = None) -> Any:
        """An engine by id or unique id prefix; with a variant, also by backend name (latest)
        or ``best`` (:meth:`best_engine`)."""
        if ref == "best" and variant_id:
            best = self.best_engine(variant_id)
            if best is None:
                raise UserError(f"{variant_id} has no engine that passed parity; build one with "
                                f"`evalhub build-engine {variant_id} --backend auto`")
            return best
        engines = self.list_engines(variant_id)
        matches = [e for e in engines if e.id == ref]
        if not matches and variant_id:   # before id prefixes: every id starts with its backend's name
            matches = [e for e in engines if e.backend == ref][-1:]
        matches = matches or [e for e in engines if e.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"engine {quote(ref)} is ambiguous: {quote_list([e.id for e in matches], 8, 60)}; "
                            "give more of the id")
        ids = [e.id for e in engines]
        known = f"; known: {', '.join(ids[-8:])}" if ids else "; none built yet (run `evalhub build-engine VARIANT`)"
        raise UserError(f"no engine {quote(ref)}{' for ' + variant_id if variant_id else ''}"
                        f"{did_you_mean(ref, ids)}{known}")

    # -- pushes to the Hub (the Hub holds the files; this is where they went) ------------
    def add_push(self, variant_id: str, *, repo_id: str, revision: str, commit_oid: str | None, url: str,
                 pr_url: str | None, files: list[str]) -> None:
        with self.connect() as conn:
            conn.execute("INSERT INTO pushes VALUES (?,?,?,?,?,?,?,?)", (
                variant_id, repo_id, revision, commit_oid, url, pr_url, json.dumps(files), time.time()))

    def pushes(self, variant_id: str) -> list[dict]:
        """Where a variant was published, oldest first (``files``: the paths in the repo)."""
        with self.read() as conn:
            rows = conn.execute("SELECT * FROM pushes WHERE variant_id = ? ORDER BY created_at",
                                (variant_id,)).fetchall() if conn else []
        return [{**dict(r), "files": json.loads(r["files"])} for r in rows]

    # -- runs ---------------------------------------------------------------------------
    def add_run(self, run: RunRecord, metrics: Iterable[Any], predictions: Iterable[dict] = (),
                records: dict[str, list[dict]] | None = None) -> str:
        """Store a run with its metrics, predictions and evaluator records in one transaction."""
        with self.connect() as conn:
            self._insert_run(conn, run, metrics, predictions, records)
        return run.id

    def records(self, run_id: str, evaluator: str | None = None) -> list[dict]:
        """Per-example records of a run (all evaluators, or one), in order."""
        query, args = "SELECT evaluator, data FROM records WHERE run_id = ?", (run_id,)
        if evaluator:
            query, args = query + " AND evaluator = ?", (run_id, evaluator)
        with self.read() as conn:
            rows = conn.execute(query + " ORDER BY evaluator, idx", args).fetchall() if conn else []
        return [{"evaluator": r["evaluator"], **json.loads(r["data"])} for r in rows]

    @staticmethod
    def _insert_run(conn: sqlite3.Connection, run: RunRecord, metrics: Iterable[Any],
                    predictions: Iterable[dict], records: dict[str, list[dict]] | None = None) -> None:
        conn.execute(
            "INSERT INTO runs (id, variant_id, engine, suite, dataset, split, data_hash, config_hash, seed, versions,"
            " n_examples, duration_s, created_at, suite_steps) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (
                run.id, run.variant_id, run.engine, run.suite, run.dataset, run.split, run.data_hash,
                run.config_hash, run.seed, json.dumps(run.versions, sort_keys=True), run.n_examples,
                run.duration_s, run.created_at, json.dumps(run.suite_steps, default=str)))
        conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", [
            (run.id, m.name, float(m.value), m.ci_low, m.ci_high, int(m.higher_is_better))
            for m in metrics])
        conn.executemany("INSERT INTO predictions VALUES (?,?,?,?,?,?)", [
            (run.id, p["idx"], p["text"], p.get("label"), p["prediction"],
             json.dumps(p["probabilities"])) for p in predictions])
        for evaluator, rows in (records or {}).items():
            conn.executemany("INSERT INTO records VALUES (?,?,?,?)", [
                (run.id, evaluator, i, json.dumps(row, default=str)) for i, row in enumerate(rows)])

    def runs(self, variant_id: str | None = None) -> list[dict]:
        query, args = "SELECT * FROM runs", ()
        if variant_id:
            query, args = query + " WHERE variant_id = ?", (variant_id,)
        with self.read() as conn:
            rows = conn.execute(query + " ORDER BY created_at", args).fetchall() if conn else []
        return [{**dict(r), "suite_steps": _load_steps(r["suite_steps"])} for r in rows]

    def metrics(self, run_id: str) -> list[dict]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT metric, value, ci_low, ci_high, higher_is_better FROM metrics WHERE run_id = ? ORDER BY metric",
                (run_id,))] if conn else []

    def predictions(self, run_id: str, limit: int | None = None) -> list[dict]:
        with self.read() as conn:
            rows = conn.execute("SELECT * FROM predictions WHERE run_id = ? ORDER BY idx LIMIT ?",
                                (run_id, -1 if limit is None else limit)).fetchall() if conn else []
        return [{**dict(r), "probabilities": json.loads(r["probabilities"])} for r in rows]

    def leaderboard(self) -> list[dict]:
        """One row per (variant, engine, split): the latest value of every metric."""
        with self.read() as conn:
            if conn is None:
                return []
            rows = conn.execute("""
                SELECT v.id AS variant, v.name, v.task,
                       CASE v.peft_method WHEN 'none' THEN 'full' ELSE v.peft_method END AS method, r.engine, r.split,
                       r.dataset, m.metric, m.value, m.ci_low, m.ci_high, r.created_at, r.id AS run_id, r.suite_steps
                FROM metrics m JOIN runs r ON r.id = m.run_id JOIN variants v ON v.id = r.variant_id
                ORDER BY r.created_at""").fetchall()
        board: dict[tuple, dict] = {}
        source: dict[tuple, dict[str, str]] = {}     # row -> metric -> the run its value comes from
        settings_of: dict[str, dict[str, str]] = {}  # run -> metric -> its step's non-default options
        for r in rows:  # later runs overwrite earlier values of the same metric
            key = (r["variant"], r["engine"], r["split"])
            row = board.setdefault(key, {"variant": r["variant"], "name": r["name"], "task": r["task"],
                                         "method": r["method"],
                                         "engine": r["engine"], "dataset": r["dataset"], "split": r["split"]})
            row[r["metric"]] = r["value"]
            row.pop(f"{r['metric']}_ci", None)
            if r["ci_low"] is not None:
                row[f"{r['metric']}_ci"] = [r["ci_low"], r["ci_high"]]
            source.setdefault(key, {})[r["metric"]] = r["run_id"]
            if r["run_id"] not in settings_of:     # each run's steps are read once, not once per metric
                settings_of[r["run_id"]] = {metric: text for step in _load_steps(r["suite_steps"])
                                            for text in describe_steps([step]) for metric in step.get("metrics", [])}
        for key, row in board.items():   # options that differ from the defaults, behind the values shown
            settings = sorted({settings_of[run][metric] for metric, run in source[key].items()
                               if metric in settings_of[run]})
            if settings:
                row["settings"] = "; ".join(settings)
        return sorted(board.values(), key=_board_order)


def _board_order(row: dict) -> tuple:
    """Rows of one task together, each task's best first by its headline metric (``Task.headline_metric``)."""
    from hub.registries import TASKS

    headline = TASKS.get(row["task"]).headline_metric if row.get("task") in TASKS else "accuracy"
    return row.get("task") or "", -float(row.get(headline, float("-inf")))
