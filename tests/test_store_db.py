"""The store's results database on both backends: SQLite (a file in the store) and PostgreSQL (a
throwaway server, tests/pg_server.py). Every test taking ``store`` runs once per backend.

Also: Alembic's migrations build exactly ``hub.db.schema``; a store written by the evalhub before
SQLAlchemy (raw sqlite3, its SCHEMA) is read as it is and upgraded in place with every row kept;
and each database fault is one line and exit 2.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import namedtuple
from dataclasses import dataclass

import pytest
from sqlalchemy import create_engine, make_url, text

from hub.cli import main
from hub.db.migrate import head
from hub.errors import UserError
from hub.store import RunRecord, Store, VariantRecord

Metric = namedtuple("Metric", "name value ci_low ci_high higher_is_better")

# the results database as the evalhub before hub/db wrote it (hub/results_db.py's SCHEMA), verbatim
LEGACY_SCHEMA = """
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
LEGACY_TABLES = ("variants", "runs", "metrics", "predictions", "records", "engines", "pushes")


@dataclass
class Engine:   # the fields of an EngineRecord the store reads (its record is stored as JSON)
    id: str
    variant_id: str
    backend: str = "onnxruntime"
    precision: str = "fp32"
    created_at: float = 2.0


@pytest.fixture
def store(tmp_path, db_url):
    return Store(tmp_path / "home", db=db_url)


def variant(store: Store, vid: str = "v1", created_at: float = 1.0) -> VariantRecord:
    record = VariantRecord(id=vid, name=f"name-{vid}", task="text-classification", base_model="m",
                           peft_method="lora", labels=["a", "b"], dataset={"source": "d.csv"}, peft_config={"r": 4},
                           hyperparameters={}, run_config={}, config_hash="c", seed=2**40, versions={"torch": "2"},
                           created_at=created_at)
    store.variant_path(vid).mkdir(parents=True, exist_ok=True)
    store.add_variant(record)
    return record


def run_of(vid: str = "v1", **fields) -> RunRecord:
    return RunRecord(**{"variant_id": vid, "engine": "torch", "suite": "default", "dataset": "d.csv", "split": "test",
                        "data_hash": "h", "config_hash": "c", "seed": 7, "versions": {"torch": "2"}, "n_examples": 2,
                        "duration_s": 0.5, **fields})


PREDICTIONS = [{"idx": i, "text": f"text {i} ünï", "label": "a", "prediction": "b", "probabilities": [0.25, 0.75]}
               for i in range(3)]


def test_every_record_round_trips(store):
    record = variant(store)
    assert store.list_variants() == [record] and store.get_variant("name-v1") == record
    run = run_of(suite_steps=[{"evaluator": "robustness", "options": {"severity": 0.3}, "metrics": ["flip_rate"]}])
    store.add_run(run, [Metric("accuracy", 0.5, 0.25, 0.75, True), Metric("flip_rate", 0.1, None, None, False)],
                  PREDICTIONS, {"robustness": [{"edit": "x"}, {"edit": "y"}]})
    (stored,) = store.runs("v1")
    assert stored["id"] == run.id and stored["suite_steps"] == run.suite_steps and stored["seed"] == 7
    assert json.loads(stored["versions"]) == run.versions
    assert store.metrics(run.id) == [
        {"metric": "accuracy", "value": 0.5, "ci_low": 0.25, "ci_high": 0.75, "higher_is_better": 1},
        {"metric": "flip_rate", "value": 0.1, "ci_low": None, "ci_high": None, "higher_is_better": 0}]
    assert [p["text"] for p in store.predictions(run.id, limit=2)] == ["text 0 ünï", "text 1 ünï"]
    assert store.predictions(run.id)[2]["probabilities"] == [0.25, 0.75]
    assert store.records(run.id, "robustness") == [{"evaluator": "robustness", "edit": "x"},
                                                   {"evaluator": "robustness", "edit": "y"}]
    assert store.leaderboard() == [{"variant": "v1", "name": "name-v1", "task": "text-classification",
                                    "method": "lora", "engine": "torch", "dataset": "d.csv", "split": "test",
                                    "accuracy": 0.5, "accuracy_ci": [0.25, 0.75], "flip_rate": 0.1,
                                    "settings": "robustness severity=0.3"}]
    store.add_push("v1", repo_id="me/m", revision="main", commit_oid=None, url="u", pr_url=None, files=["a"])
    assert [p["files"] for p in store.pushes("v1")] == [["a"]]


def test_engines_and_removal(store, monkeypatch):
    import hub.engines.base as base

    monkeypatch.setattr(base, "EngineRecord", Engine)
    variant(store)
    store.engine_path("v1", "onnxruntime-1").mkdir(parents=True)
    store.add_engine(Engine("onnxruntime-1", "v1"), run_of(engine="onnxruntime-1"), [Metric("acc", 1.0, None, None, 1)])
    assert store.get_engine("onnxruntime", variant_id="v1") == Engine("onnxruntime-1", "v1")
    store.add_run(run_of(), [Metric("acc", 0.5, None, None, 1)], PREDICTIONS, {"e": [{}]})
    stamp = store.stamp()
    store.add_push("v1", repo_id="me/m", revision="main", commit_oid="c", url="u", pr_url="p", files=[])
    assert store.stamp() != stamp
    counts = store.remove_variant(store.get_variant("v1"))
    assert counts == {"metrics": 2, "predictions": 3, "records": 1, "runs": 2, "engines": 1, "pushes": 1}
    assert store.list_variants() == [] and store.runs() == [] and not store.variant_path("v1").exists()


def test_a_run_commits_whole_or_not_at_all(store, monkeypatch):
    import hub.engines.base as base

    monkeypatch.setattr(base, "EngineRecord", Engine)
    variant(store)
    broken = PREDICTIONS + [PREDICTIONS[0]]   # a repeated idx: the last insert of the transaction fails
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        store.add_run(run_of(), [Metric("accuracy", 0.5, None, None, 1)], broken)
    assert store.runs() == [] and store.leaderboard() == []
    store.engine_path("v1", "e1").mkdir(parents=True)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        store.add_engine(Engine("e1", "v1"), run_of(engine="e1"), [], broken)
    assert store.list_engines() == [] and store.runs() == [] and not store.engine_path("v1", "e1").exists()


def test_first_writers_racing_on_a_new_database_all_land(store):
    """Four processes' worth of stores write to one new database at once: one creates the schema, the
    others wait for it (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), every row lands."""
    url = store.db.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            variant(Store(store.root, db=url), f"v{i}", created_at=float(i))
        except BaseException as exc:   # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [v.id for v in store.list_variants()] == ["v0", "v1", "v2", "v3"]


def test_a_database_from_a_newer_evalhub_is_refused_and_left_alone(store):
    variant(store)
    engine = create_engine(store.db.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    for call in (store.list_variants, store.check_writable, lambda: variant(store, "v2")):
        with pytest.raises(UserError, match=r"written by a newer evalhub \(schema revision 9999; this one knows "
                                            r"up to \d{4}\); upgrade evalhub"):
            call()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "9999"
        assert conn.execute(text("SELECT count(*) FROM variants")).scalar() == 1
    engine.dispose()


def test_the_migrations_build_exactly_the_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hub.db.schema import metadata

    variant(store)   # the first write migrates
    engine = create_engine(store.db.url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_a_row_whose_folder_this_machine_cannot_see(store):
    record = variant(store)
    store.variant_path("v1").rmdir()
    shared = not store.db.is_file
    message = (r"its folder .*/variants/v1 is not reachable from this machine, but the shared database .* lists it; "
               r"the store folder must be a shared path" if shared else r"its folder .* is missing from the store")
    with pytest.raises(UserError, match=message):
        store.variant_folder(record)


def test_an_empty_server_database_is_an_empty_store(postgres_url, tmp_path):
    store = Store(tmp_path / "home", db=postgres_url)
    assert store.list_variants() == [] and store.leaderboard() == [] and store.stamp() == "-"
    store.check_writable()


# -- a store written before hub/db: upgraded in place ----------------------------------------------

def legacy_store(home, *, suite_steps: bool = True):
    """A results.db as the evalhub before SQLAlchemy wrote it, one row in every table."""
    home.mkdir(parents=True)
    conn = sqlite3.connect(home / "results.db")
    conn.execute("PRAGMA journal_mode=WAL")
    schema = LEGACY_SCHEMA if suite_steps else LEGACY_SCHEMA.replace(",\n    suite_steps TEXT NOT NULL DEFAULT '[]'", "")
    conn.executescript(schema)
    record = VariantRecord(id="v-old", name="old", task="text-classification", base_model="m", peft_method="none",
                           labels=["a"], dataset={}, peft_config={}, hyperparameters={}, run_config={},
                           config_hash="c", seed=1, versions={}, created_at=1.0)
    conn.execute("INSERT INTO variants VALUES (?,?,?,?,?,?,?,?,?)", (
        "v-old", "old", "model", None, "text-classification", "m", "none", 1.0, record.to_json()))
    run = ("run-old", "v-old", "torch", "default", "d.csv", "test", "h", "c", 3, "{}", 2, 0.5, 2.0)
    conn.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(run))}{',?' if suite_steps else ''})",
                 run + (('[{"evaluator": "classification", "options": {}, "metrics": ["accuracy"]}]',)
                        if suite_steps else ()))
    conn.execute("INSERT INTO metrics VALUES ('run-old', 'accuracy', 0.75, 0.5, 0.9, 1)")
    conn.execute("INSERT INTO predictions VALUES ('run-old', 0, 'a text', 'a', 'a', '[1.0]')")
    conn.execute("INSERT INTO records VALUES ('run-old', 'robustness', 0, '{\"edit\": 1}')")
    conn.execute("INSERT INTO engines VALUES ('torch-bf16-1', 'v-old', 'torch', 'bf16', 3.0, '{}')")
    conn.execute("INSERT INTO pushes VALUES ('v-old', 'me/old', 'main', NULL, 'u', NULL, '[]', 4.0)")
    conn.commit()
    conn.close()
    (home / "variants" / "v-old").mkdir(parents=True)
    return record


def dump(db) -> dict[str, list]:
    conn = sqlite3.connect(db)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in LEGACY_TABLES}
    finally:
        conn.close()


@pytest.mark.parametrize("suite_steps", [True, False], ids=["current", "before-suite-steps"])
def test_a_store_written_by_the_sqlite3_evalhub_is_upgraded_in_place(tmp_path, suite_steps):
    home = tmp_path / "home"
    record = legacy_store(home, suite_steps=suite_steps)
    db = home / "results.db"
    before, raw = dump(db), db.read_bytes()
    store = Store(home)
    # reads see every row and write nothing (no alembic_version table, the file's bytes unchanged)
    assert store.list_variants() == [record]
    assert store.leaderboard()[0]["accuracy"] == 0.75
    assert store.runs("v-old")[0]["suite_steps"] == ([{"evaluator": "classification", "options": {},
                                                       "metrics": ["accuracy"]}] if suite_steps else [])
    assert db.read_bytes() == raw
    # the first write upgrades it in place: every row kept, the new run beside them
    store.add_run(run_of("v-old"), [Metric("accuracy", 0.5, None, None, 1)])
    after = dump(db)
    for table in LEGACY_TABLES:
        old_rows = [row + (("[]",) if table == "runs" and not suite_steps else ()) for row in before[table]]
        assert [row for row in after[table] if row in old_rows] == old_rows, table
    assert len(after["runs"]) == 2
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


# -- faults: one line, exit 2, nothing changed -------------------------------------------------------

def one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("url, needle", [
    ("not a url", r"database URL 'not a url' is malformed; give sqlite:///PATH or postgresql\+psycopg://"),
    ("postgresql://me:secret@db:port/results", r"database URL 'db:port/results' is malformed"),
    ("mysql://me:secret@db/results", r"evalhub does not speak 'mysql'; give sqlite:///PATH or postgresql"),
    ("postgresql+asyncpg://me@db/results", r"does not speak 'postgresql\+asyncpg'"),
    ("sqlite://", r"names no file; give sqlite:///PATH"),
])
def test_a_bad_database_url_is_one_line(capsys, tmp_path, url, needle):
    import re

    line = one_line_error(capsys, "list", "--home", str(tmp_path / "home"), "--db", url)
    assert re.search(needle, line) and "secret" not in line, line
    assert not (tmp_path / "home").exists()


def test_an_unreachable_server_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EVALHUB_DB", f"postgresql+psycopg://postgres@/results?host={tmp_path / 'nowhere'}")
    line = one_line_error(capsys, "list", "--home", str(tmp_path / "home"))
    assert "cannot reach the database 'postgresql+psycopg://postgres@/results?host=" in line
    assert "check the host, port and that the server runs" in line


def test_a_wrong_password_and_a_missing_database_are_one_line(capsys, tmp_path, postgres_server, postgres_url):
    from tests.pg_server import PASSWORD, PASSWORD_USER

    good = postgres_server.url(make_url(postgres_url).database, PASSWORD_USER, PASSWORD)
    assert main(["list", "--home", str(tmp_path / "home"), "--db", good]) == 0
    line = one_line_error(capsys, "list", "--home", str(tmp_path / "home"), "--db", good.replace(PASSWORD, "wrong"))
    assert "refused the login" in line and "password authentication failed" in line and "wrong" not in line
    missing = postgres_server.url("no_such_db")
    line = one_line_error(capsys, "eval", "x", "--home", str(tmp_path / "home"), "--db", missing)
    assert "does not exist on its server" in line and "createdb" in line
    assert not (tmp_path / "home").exists()


def test_a_user_without_rights_on_the_tables_is_one_line(capsys, tmp_path, postgres_server, postgres_url):
    variant(Store(tmp_path / "home", db=postgres_url))
    postgres_server.execute("DO $$ BEGIN CREATE ROLE outsider LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    outsider = postgres_server.url(make_url(postgres_url).database, "outsider")
    line = one_line_error(capsys, "list", "--home", str(tmp_path / "home"), "--db", outsider)
    assert "refused this user (permission denied for table" in line and "grant it access" in line


def test_the_cli_refuses_a_newer_database_and_an_unreachable_folder(capsys, tmp_path, postgres_url):
    store = Store(tmp_path / "home", db=postgres_url)
    variant(store)
    store.variant_path("v1").rmdir()
    line = one_line_error(capsys, "export-space", "--home", str(tmp_path / "home"), "--db", postgres_url,
                          str(tmp_path / "space"))
    assert f"its folder {tmp_path / 'home' / 'variants' / 'v1'} is not reachable from this machine" in line
    assert "the store folder must be a shared path" in line
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    line = one_line_error(capsys, "list", "--home", str(tmp_path / "home"), "--db", postgres_url)
    assert "written by a newer evalhub (schema revision 0042" in line


def test_the_database_comes_from_db_then_the_app_config_then_evalhub_db(tmp_path, monkeypatch):
    from argparse import Namespace

    from hub.cli import _store
    from hub.ui.app_config import load_app_config

    config = tmp_path / "hub.yaml"
    config.write_text(f"app:\n  db: sqlite:///{tmp_path / 'team.db'}\n")
    from_config = load_app_config(config).db
    monkeypatch.setenv("EVALHUB_DB", f"sqlite:///{tmp_path / 'env.db'}")
    home = tmp_path / "home"
    assert _store(Namespace(home=home, db=f"sqlite:///{tmp_path / 'flag.db'}"), db=from_config).db_path == \
        tmp_path / "flag.db"
    assert _store(Namespace(home=home, db=None), db=from_config).db_path == tmp_path / "team.db"
    assert _store(Namespace(home=home, db=None)).db_path == tmp_path / "env.db"
    monkeypatch.delenv("EVALHUB_DB")
    assert _store(Namespace(home=home, db=None)).db_path == home / "results.db"
