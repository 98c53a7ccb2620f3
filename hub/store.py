"""The store: variants and their files, and their results in a database.

Layout of ``EVALHUB_HOME`` (``./.evalhub`` by default)::

    variants/<id>/           model/ (merged or full weights, safetensors), adapter/, variant.json
    variants/<id>/engines/<engine-id>/   an inference engine: its files, engine.json, reports
    work/<config-hash>/      checkpoints and tracker logs of a training run (for --resume)
    staging/                 folders being written; renamed into place when complete
    results.db               SQLite in WAL mode, unless the results live elsewhere (``--db``, ``EVALHUB_DB``)

The results database (:mod:`hub.db`: SQLite or PostgreSQL through SQLAlchemy Core) holds
the rows; metrics are in long form, so a new evaluator needs no schema change. A run is
committed with all its metrics and per-example predictions in one transaction, or not at all.
With a shared database, the store folder must be a shared path too: a row whose folder this
machine cannot see is refused by name.

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
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import Connection, case, delete, insert, select

from hub.datafiles import env_megabytes
from hub.db import Database, resolve_url
from hub.db.schema import engines, metrics, predictions, pushes, records, runs, variants
from hub.db.sqlite_file import probe_folder
from hub.errors import UserError, clean, did_you_mean, quote, quote_list
from hub.fsutil import staged_dir
from hub.records import RunRecord, VariantRecord, describe_steps, leaderboard_rows, load_steps, match_variants

__all__ = ["MIN_FREE_MB", "RunRecord", "Store", "VariantRecord", "default_home", "describe_steps", "match_variants"]


def default_home() -> Path:
    return Path(os.environ.get("EVALHUB_HOME") or ".evalhub")


MIN_FREE_MB = 256    # a variant of the embedded MiniLM is ~90 MB, an engine ~25-90 MB


class Store:
    """Files and results of every variant. Cheap to construct; the DB is created on first write.

    ``db`` is the results database's SQLAlchemy URL (``--db`` or ``db:`` in an app config; else
    ``EVALHUB_DB``; else the store's own ``results.db``). Reads never write: a read-only command
    opens the database read-only and never creates it, so an empty, missing or damaged
    ``results.db`` beside variant folders is reported, not silently replaced by an empty one.
    """

    def __init__(self, home: str | Path | None = None, db: str | None = None) -> None:
        self.root = Path(home) if home else default_home()
        self.variants_dir = self.root / "variants"
        self.staging_dir = self.root / "staging"
        self.db = Database(resolve_url(db, self.root))
        self.db_path = self.db.path   # the SQLite file; None when the results live on a server

    # -- database -----------------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A writing connection in one transaction; commits on success, rolls back on any exception.

        Creates the database on first use; commands call :meth:`check_writable` first, which
        refuses to start over a lost database.
        """
        self._check_db_path()
        if self.db.is_file:
            self.db.path.parent.mkdir(parents=True, exist_ok=True)
        with self.db.write() as conn:
            yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection | None]:
        """A read-only connection, or None when there is no database yet (an empty store).

        Never creates or changes the database. Columns and tables added by later schema
        revisions read as their defaults, so an older database is read as it is.
        """
        self._check_db_path()
        path = self.db.path
        if path is not None and (not path.exists() or path.stat().st_size == 0):
            if self._has_variant_folders():
                raise UserError(self._lost_db_message("is missing" if not path.exists() else "is empty (0 bytes)"))
            yield None
            return
        with self.db.read() as conn:
            if conn is None and path is not None:
                raise UserError(self._lost_db_message("holds no evalhub tables") if self._has_variant_folders() else
                                f"{path} is not an evalhub results database; move it aside or give --home another "
                                "store")
            yield conn

    def _check_db_path(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"the store {clean(self.root, 200)} is a file, not a folder; give --home "
                            "(or EVALHUB_HOME) a folder")
        if self.db_path is not None and self.db_path.is_dir():
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
        made in) is checked by writing a file into it; the database by taking its write lock
        (SQLite) or reaching it (a server); the disk by its free space (``EVALHUB_MIN_FREE_MB``).
        Nothing is left behind.
        """
        with self.read():   # a missing, empty or damaged database beside variant folders is reported, not replaced
            pass
        for folder in (self.root, self.variants_dir, self.staging_dir):
            if folder.exists() and not folder.is_dir():
                raise UserError(f"{clean(folder, 200)} is a file, where the store keeps a folder; move it aside")
            probe_folder(folder)
        self.db.probe_write()
        existing = next(p for p in (self.root, *self.root.resolve().parents) if p.exists())
        free_mb = shutil.disk_usage(existing).free / 2**20
        need = env_megabytes("EVALHUB_MIN_FREE_MB", MIN_FREE_MB, zero_ok=True)
        if free_mb < need:
            raise UserError(f"only {free_mb:.0f} MB free on the disk of {clean(self.root, 200)}, under the {need:g} MB "
                            "a command that stores models needs; free space (or lower EVALHUB_MIN_FREE_MB)")

    def stamp(self) -> str:
        """Changes whenever the results do; cheap (:meth:`hub.db.Database.stamp`)."""
        return self.db.stamp()

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
                conn.execute(insert(variants).values(
                    id=record.id, name=record.name, kind=record.kind, parent_id=record.parent_id, task=record.task,
                    base_model=record.base_model, peft_method=record.peft_method, created_at=record.created_at,
                    record=record.to_json()))
        except BaseException:
            shutil.rmtree(self.variant_path(record.id), ignore_errors=True)
            raise

    def list_variants(self) -> list[VariantRecord]:
        with self.read() as conn:
            rows = conn.execute(select(variants.c.record).order_by(variants.c.created_at)).scalars().all() if conn else []
        return [self._record(VariantRecord, text, "variant") for text in rows]

    def _record(self, cls: type, text: str, kind: str) -> Any:
        """A stored JSON record as ``cls``; a record this evalhub cannot read is one UserError."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise UserError(f"{clean(self.db.name, 200)} holds a damaged {kind} record; restore it from a backup")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise UserError(f"{clean(self.db.name, 200)}: a {kind} record has fields this evalhub does not know "
                            f"({quote_list(extra, 4)}): it was written by a newer evalhub; upgrade evalhub to read "
                            "this store")
        try:
            return cls(**data)
        except TypeError:   # a required field is missing
            raise UserError(f"{clean(self.db.name, 200)} holds a {kind} record without all its fields; restore it "
                            "from a backup") from None

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
        if not folder.is_dir() and not self.db.is_file:   # the rows are shared; the folder is not here
            raise UserError(f"variant {record.id}: its folder {clean(folder, 200)} is not reachable from this machine, "
                            f"but the shared database {self.db.name} lists it; the store folder must be a shared path "
                            "that every machine mounts (give it with --home or EVALHUB_HOME)")
        if not folder.is_dir():
            raise UserError(f"variant {record.id}: its folder {clean(folder, 200)} is missing from the store; restore "
                            f"it from a backup, or remove the variant and its results with `evalhub remove {record.id}`")
        return folder

    def remove_variant(self, record: VariantRecord) -> dict[str, int]:
        """Delete a variant's rows (runs, metrics, predictions, records, engines, pushes) in one transaction,
        then its folder. Returns how many rows of each table went."""
        counts = {}
        with self.connect() as conn:
            made = select(runs.c.id).where(runs.c.variant_id == record.id)
            for table in (metrics, predictions, records):
                counts[table.name] = conn.execute(delete(table).where(table.c.run_id.in_(made))).rowcount
            for table in (runs, engines, pushes):
                counts[table.name] = conn.execute(delete(table).where(table.c.variant_id == record.id)).rowcount
            conn.execute(delete(variants).where(variants.c.id == record.id))
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
                conn.execute(insert(engines).values(
                    id=record.id, variant_id=record.variant_id, backend=record.backend, precision=record.precision,
                    created_at=record.created_at, record=json.dumps(asdict(record), sort_keys=True, default=str)))
                if run is not None:
                    self._insert_run(conn, run, metrics, predictions, records)
        except BaseException:
            shutil.rmtree(self.engine_path(record.variant_id, record.id), ignore_errors=True)
            raise

    def list_engines(self, variant_id: str | None = None) -> list[Any]:
        from hub.engines.base import EngineRecord

        query = select(engines.c.record).order_by(engines.c.created_at)
        if variant_id:
            query = query.where(engines.c.variant_id == variant_id)
        with self.read() as conn:
            rows = conn.execute(query).scalars().all() if conn else []
        return [self._record(EngineRecord, text, "engine") for text in rows]

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
            conn.execute(insert(pushes).values(
                variant_id=variant_id, repo_id=repo_id, revision=revision, commit_oid=commit_oid, url=url,
                pr_url=pr_url, files=json.dumps(files), created_at=time.time()))

    def pushes(self, variant_id: str) -> list[dict]:
        """Where a variant was published, oldest first (``files``: the paths in the repo)."""
        with self.read() as conn:
            rows = conn.execute(select(pushes).where(pushes.c.variant_id == variant_id)
                                .order_by(pushes.c.created_at)).mappings().all() if conn else []
        return [{**r, "files": json.loads(r["files"])} for r in rows]

    # -- runs ---------------------------------------------------------------------------
    def add_run(self, run: RunRecord, metrics: Iterable[Any], predictions: Iterable[dict] = (),
                records: dict[str, list[dict]] | None = None) -> str:
        """Store a run with its metrics, predictions and evaluator records in one transaction."""
        with self.connect() as conn:
            self._insert_run(conn, run, metrics, predictions, records)
        return run.id

    def records(self, run_id: str, evaluator: str | None = None) -> list[dict]:
        """Per-example records of a run (all evaluators, or one), in order."""
        query = select(records.c.evaluator, records.c.data).where(records.c.run_id == run_id)
        if evaluator:
            query = query.where(records.c.evaluator == evaluator)
        with self.read() as conn:
            rows = conn.execute(query.order_by(records.c.evaluator, records.c.idx)).all() if conn else []
        return [{"evaluator": name, **json.loads(data)} for name, data in rows]

    @staticmethod
    def _insert_run(conn: Connection, run: RunRecord, metric_rows: Iterable[Any],
                    prediction_rows: Iterable[dict], record_rows: dict[str, list[dict]] | None = None) -> None:
        conn.execute(insert(runs).values(
            id=run.id, variant_id=run.variant_id, engine=run.engine, suite=run.suite, dataset=run.dataset,
            split=run.split, data_hash=run.data_hash, config_hash=run.config_hash, seed=run.seed,
            versions=json.dumps(run.versions, sort_keys=True), n_examples=run.n_examples, duration_s=run.duration_s,
            created_at=run.created_at, suite_steps=json.dumps(run.suite_steps, default=str)))
        rows = {
            metrics: [{"run_id": run.id, "metric": m.name, "value": float(m.value), "ci_low": m.ci_low,
                       "ci_high": m.ci_high, "higher_is_better": int(m.higher_is_better)} for m in metric_rows],
            predictions: [{"run_id": run.id, "idx": p["idx"], "text": p["text"], "label": p.get("label"),
                           "prediction": p["prediction"], "probabilities": json.dumps(p["probabilities"])}
                          for p in prediction_rows],
            records: [{"run_id": run.id, "evaluator": evaluator, "idx": i, "data": json.dumps(row, default=str)}
                      for evaluator, rows in (record_rows or {}).items() for i, row in enumerate(rows)],
        }
        for table, values in rows.items():
            if values:   # executemany; SQLAlchemy batches them into multi-row INSERTs where the driver can
                conn.execute(insert(table), values)

    def runs(self, variant_id: str | None = None) -> list[dict]:
        query = select(runs).order_by(runs.c.created_at)
        if variant_id:
            query = query.where(runs.c.variant_id == variant_id)
        with self.read() as conn:
            rows = conn.execute(query).mappings().all() if conn else []
        return [{**r, "suite_steps": load_steps(r["suite_steps"])} for r in rows]

    def metrics(self, run_id: str) -> list[dict]:
        with self.read() as conn:
            return [dict(r) for r in conn.execute(
                select(metrics.c.metric, metrics.c.value, metrics.c.ci_low, metrics.c.ci_high, metrics.c.higher_is_better)
                .where(metrics.c.run_id == run_id).order_by(metrics.c.metric)).mappings()] if conn else []

    def predictions(self, run_id: str, limit: int | None = None) -> list[dict]:
        with self.read() as conn:
            query = select(predictions).where(predictions.c.run_id == run_id).order_by(predictions.c.idx).limit(limit)
            rows = conn.execute(query).mappings().all() if conn else []
        return [{**r, "probabilities": json.loads(r["probabilities"])} for r in rows]

    def leaderboard(self) -> list[dict]:
        """One row per (variant, engine, split): the latest value of every metric."""
        with self.read() as conn:
            if conn is None:
                return []
            rows = conn.execute(
                select(variants.c.id.label("variant"), variants.c.name, variants.c.task,
                       case((variants.c.peft_method == "none", "full"), else_=variants.c.peft_method).label("method"),
                       runs.c.engine, runs.c.split, runs.c.dataset, metrics.c.metric, metrics.c.value, metrics.c.ci_low,
                       metrics.c.ci_high, runs.c.created_at, runs.c.id.label("run_id"), runs.c.suite_steps)
                .select_from(metrics.join(runs, runs.c.id == metrics.c.run_id)
                             .join(variants, variants.c.id == runs.c.variant_id))
                .order_by(runs.c.created_at)).mappings().all()
        return leaderboard_rows(rows)
