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
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from hub.errors import UserError, did_you_mean
from hub.fsutil import staged_dir

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
CREATE INDEX IF NOT EXISTS runs_by_variant ON runs(variant_id);
"""


@dataclass
class VariantRecord:
    """A trained model with its lineage; serialised whole into ``variant.json`` and the DB."""

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


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an earlier evalhub up to SCHEMA (columns added since, with defaults)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    if "suite_steps" not in columns:   # runs from before suites were recorded: what they ran is unknown
        try:
            conn.execute("ALTER TABLE runs ADD COLUMN suite_steps TEXT NOT NULL DEFAULT '[]'")
        except sqlite3.OperationalError as exc:   # another process added it first
            if "duplicate column" not in str(exc):
                raise


def default_home() -> Path:
    return Path(os.environ.get("EVALHUB_HOME") or ".evalhub")


class Store:
    """Files and results of every variant. Cheap to construct; the DB is created on first use."""

    def __init__(self, home: str | Path | None = None) -> None:
        self.root = Path(home) if home else default_home()
        self.variants_dir = self.root / "variants"
        self.staging_dir = self.root / "staging"
        self.db_path = self.root / "results.db"

    # -- database -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in WAL mode; commits on success, rolls back on any exception."""
        self.root.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
            _migrate(conn)
            conn.row_factory = sqlite3.Row
            with conn:  # one transaction
                yield conn
        finally:
            conn.close()

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
        if not self.db_path.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute("SELECT record FROM variants ORDER BY created_at").fetchall()
        return [VariantRecord(**json.loads(r["record"])) for r in rows]

    def get_variant(self, ref: str) -> VariantRecord:
        """Look a variant up by id, unique id prefix or name; UserError when there is none."""
        variants = self.list_variants()
        exact = [v for v in variants if ref in (v.id, v.name)]
        matches = exact or [v for v in variants if v.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UserError(f"variant '{ref}' is ambiguous: {', '.join(v.id for v in matches)}; give more of the id")
        ids = [v.id for v in variants]
        hint = did_you_mean(ref, ids + [v.name for v in variants])
        known = f"; known: {', '.join(ids[-8:])}" if ids else "; the store is empty (run `evalhub train` or `evalhub demo`)"
        raise UserError(f"no variant '{ref}' in {self.root}{hint}{known}")

    # -- engines --------------------------------------------------------------------------
    def engine_path(self, variant_id: str, engine_id: str) -> Path:
        return self.variant_path(variant_id) / "engines" / engine_id

    @contextlib.contextmanager
    def stage_engine(self, variant_id: str, engine_id: str) -> Iterator[Path]:
        with staged_dir(self.engine_path(variant_id, engine_id), self.staging_dir) as tmp:
            yield tmp

    def add_engine(self, record: Any, run: RunRecord | None = None, metrics: Iterable[Any] = (),
                   predictions: Iterable[dict] = ()) -> None:
        """Register a built engine (folder already in place) with its build run, all or nothing."""
        try:
            with self.connect() as conn:
                conn.execute("INSERT INTO engines VALUES (?,?,?,?,?,?)", (
                    record.id, record.variant_id, record.backend, record.precision, record.created_at,
                    json.dumps(asdict(record), sort_keys=True, default=str)))
                if run is not None:
                    self._insert_run(conn, run, metrics, predictions)
        except BaseException:
            shutil.rmtree(self.engine_path(record.variant_id, record.id), ignore_errors=True)
            raise

    def list_engines(self, variant_id: str | None = None) -> list[Any]:
        from hub.engines.base import EngineRecord

        if not self.db_path.exists():
            return []
        query, args = "SELECT record FROM engines", ()
        if variant_id:
            query, args = query + " WHERE variant_id = ?", (variant_id,)
        with self.connect() as conn:
            rows = conn.execute(query + " ORDER BY created_at", args).fetchall()
        return [EngineRecord(**json.loads(r["record"])) for r in rows]

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
            raise UserError(f"engine '{ref}' is ambiguous: {', '.join(e.id for e in matches)}; give more of the id")
        ids = [e.id for e in engines]
        known = f"; known: {', '.join(ids[-8:])}" if ids else "; none built yet (run `evalhub build-engine VARIANT`)"
        raise UserError(f"no engine '{ref}'{' for ' + variant_id if variant_id else ''}"
                        f"{did_you_mean(ref, ids)}{known}")

    # -- runs ---------------------------------------------------------------------------
    def add_run(self, run: RunRecord, metrics: Iterable[Any], predictions: Iterable[dict] = (),
                records: dict[str, list[dict]] | None = None) -> str:
        """Store a run with its metrics, predictions and evaluator records in one transaction."""
        with self.connect() as conn:
            self._insert_run(conn, run, metrics, predictions)
            for evaluator, rows in (records or {}).items():
                conn.executemany("INSERT INTO records VALUES (?,?,?,?)", [
                    (run.id, evaluator, i, json.dumps(row, default=str)) for i, row in enumerate(rows)])
        return run.id

    def records(self, run_id: str, evaluator: str | None = None) -> list[dict]:
        """Per-example records of a run (all evaluators, or one), in order."""
        query, args = "SELECT evaluator, data FROM records WHERE run_id = ?", (run_id,)
        if evaluator:
            query, args = query + " AND evaluator = ?", (run_id, evaluator)
        with self.connect() as conn:
            rows = conn.execute(query + " ORDER BY evaluator, idx", args).fetchall()
        return [{"evaluator": r["evaluator"], **json.loads(r["data"])} for r in rows]

    @staticmethod
    def _insert_run(conn: sqlite3.Connection, run: RunRecord, metrics: Iterable[Any],
                    predictions: Iterable[dict]) -> None:
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

    def runs(self, variant_id: str | None = None) -> list[dict]:
        if not self.db_path.exists():
            return []
        query, args = "SELECT * FROM runs", ()
        if variant_id:
            query, args = query + " WHERE variant_id = ?", (variant_id,)
        with self.connect() as conn:
            return [{**dict(r), "suite_steps": _load_steps(r["suite_steps"])}
                    for r in conn.execute(query + " ORDER BY created_at", args)]

    def metrics(self, run_id: str) -> list[dict]:
        with self.connect() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT metric, value, ci_low, ci_high, higher_is_better FROM metrics WHERE run_id = ? ORDER BY metric",
                (run_id,))]

    def predictions(self, run_id: str, limit: int | None = None) -> list[dict]:
        with self.connect() as conn:
            rows = conn.execute("SELECT * FROM predictions WHERE run_id = ? ORDER BY idx LIMIT ?",
                                (run_id, -1 if limit is None else limit)).fetchall()
        return [{**dict(r), "probabilities": json.loads(r["probabilities"])} for r in rows]

    def leaderboard(self) -> list[dict]:
        """One row per (variant, engine, split): the latest value of every metric."""
        if not self.db_path.exists():
            return []
        with self.connect() as conn:
            rows = conn.execute("""
                SELECT v.id AS variant, v.name,
                       CASE v.peft_method WHEN 'none' THEN 'full' ELSE v.peft_method END AS method, r.engine, r.split,
                       r.dataset, m.metric, m.value, m.ci_low, m.ci_high, r.created_at, r.id AS run_id, r.suite_steps
                FROM metrics m JOIN runs r ON r.id = m.run_id JOIN variants v ON v.id = r.variant_id
                ORDER BY r.created_at""").fetchall()
        board: dict[tuple, dict] = {}
        source: dict[tuple, dict[str, str]] = {}     # row -> metric -> the run its value comes from
        settings_of: dict[str, dict[str, str]] = {}  # run -> metric -> its step's non-default options
        for r in rows:  # later runs overwrite earlier values of the same metric
            key = (r["variant"], r["engine"], r["split"])
            row = board.setdefault(key, {"variant": r["variant"], "name": r["name"], "method": r["method"],
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
        return sorted(board.values(), key=lambda row: -float(row.get("accuracy", float("-inf"))))
