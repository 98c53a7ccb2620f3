"""Suites: built-in names and YAML files, checked whole when loaded; the runs table records what ran."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from evaluators.base import available_suites, load_suite
from hub.errors import UserError
from hub.registries import EVALUATORS


def write_suite(tmp_path, mapping, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(mapping))
    return path


@pytest.mark.parametrize("name", available_suites())
def test_every_builtin_suite_loads_and_its_options_check(name):
    suite = load_suite(name)
    assert suite.name == name and suite.steps()


def test_a_suite_file_is_loaded_by_path(tmp_path):
    path = write_suite(tmp_path, {"evaluators": ["classification", {"robustness": {"severity": 0.3, "attack": False}}]})
    suite = load_suite(str(path))
    assert suite.name == "mine"
    assert suite.steps() == [("classification", {}), ("robustness", {"severity": 0.3, "attack": False})]
    named = write_suite(tmp_path, {"name": "hard-robustness", "evaluators": ["robustness"]}, "other.yml")
    assert load_suite(str(named)).name == "hard-robustness"


@pytest.mark.parametrize("evaluators, pattern", [
    ([{"robustness": {"severty": 0.3}}], r"evaluator 'robustness' options: unknown key 'severty'.*did you mean 'severity'"),
    ([{"robustness": {"severity": 2}}], r"evaluator 'robustness' options: severity must be in \[0, 1\], got 2"),
    ([{"explain": {"precision": "fp16"}}], r"evaluator 'explain' options: precision must be one of fp32, bf16"),
    ([{"explain": {"max_examples": -5}}], r"max_examples must be >= 0 \(0: all\), got -5"),
    (["pii", {"robustness": {}}, "pii"], r"names pii more than once"),
    ([{"fairness": {"axes": "gender"}}], r"evaluator 'fairness' options"),
    ([{"classification": {"top_k": 3}}], r"'classification' takes no options besides bootstrap, got top_k"),
    ([{"classification": {"bootstrap": -1}}], r"bootstrap must be a whole number >= 0, got -1"),
    (["robustnes"], r"robustnes.*did you mean 'robustness'"),
    ([], r"the suite names no evaluators"),
    ([["classification"]], r"each evaluator must be a name or a one-key mapping"),
])
def test_a_bad_suite_fails_when_loaded(tmp_path, evaluators, pattern):
    path = write_suite(tmp_path, {"evaluators": evaluators})
    with pytest.raises(UserError, match=pattern):
        load_suite(str(path))


def test_unknown_names_and_missing_files():
    with pytest.raises(UserError, match=r"unknown suite 'defualt' \(did you mean 'default'\?\); available: .*"
                                        r"or the path of a suite YAML file"):
        load_suite("defualt")
    with pytest.raises(UserError, match=r"nowhere/suite.yaml: config file not found"):
        load_suite("nowhere/suite.yaml")


def test_every_registered_evaluator_declares_its_options():
    for name in EVALUATORS.names():
        cls = EVALUATORS.get(name)
        assert hasattr(cls, "options"), f"{name} does not say which options a suite may set"


def test_a_store_from_before_suite_steps_keeps_its_runs(tmp_path):
    """An older results.db (runs without suite_steps) is upgraded in place; its runs read as []."""
    from hub.store import RunRecord, Store

    home = tmp_path / "home"
    home.mkdir()
    old = sqlite3.connect(home / "results.db")
    old.executescript("""
        CREATE TABLE variants (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL DEFAULT 'model',
            parent_id TEXT, task TEXT NOT NULL, base_model TEXT NOT NULL, peft_method TEXT NOT NULL,
            created_at REAL NOT NULL, record TEXT NOT NULL);
        CREATE TABLE runs (id TEXT PRIMARY KEY, variant_id TEXT NOT NULL REFERENCES variants(id), engine TEXT NOT NULL,
            suite TEXT NOT NULL, dataset TEXT NOT NULL, split TEXT NOT NULL, data_hash TEXT NOT NULL,
            config_hash TEXT NOT NULL, seed INTEGER NOT NULL, versions TEXT NOT NULL,
            n_examples INTEGER NOT NULL, duration_s REAL NOT NULL, created_at REAL NOT NULL);
        INSERT INTO variants VALUES ('v1', 'v', 'model', NULL, 'text-classification', 'm', 'none', 1.0, '{}');
        INSERT INTO runs VALUES ('run-old', 'v1', 'torch', 'default', 'd.csv', 'test', 'h', 'c', 0, '{}', 3, 0.5, 2.0);
    """)
    old.commit()
    old.close()
    store = Store(home)
    assert [(r["id"], r["suite_steps"]) for r in store.runs("v1")] == [("run-old", [])]
    new = RunRecord(variant_id="v1", engine="torch", suite="mine", dataset="d.csv", split="test", data_hash="h",
                    config_hash="c", seed=0, versions={}, n_examples=3, duration_s=0.1,
                    suite_steps=[{"evaluator": "robustness", "options": {"severity": 0.3}, "metrics": []}])
    store.add_run(new, [], [], {})
    assert store.runs("v1")[-1]["suite_steps"] == new.suite_steps
    conn = sqlite3.connect(home / "results.db")
    stored = conn.execute("SELECT suite_steps FROM runs WHERE id = ?", (new.id,)).fetchone()[0]
    conn.close()
    assert json.loads(stored) == new.suite_steps
    # a column someone else wrote (another shape, or not JSON) reads as no steps, and the leaderboard still works
    conn = sqlite3.connect(home / "results.db")
    conn.execute("UPDATE runs SET suite_steps = ? WHERE id = ?", ('[["robustness", {"severity": 0.3}]]', new.id))
    conn.execute("UPDATE runs SET suite_steps = ? WHERE id = ?", ("not json", "run-old"))
    conn.commit()
    conn.close()
    assert [r["suite_steps"] for r in store.runs("v1")] == [[], []]
    store.leaderboard()


def test_the_leaderboard_names_the_settings_behind_each_row(tmp_path):
    """A row says which suite options differ from the defaults in the runs it shows; a newer value
    without a CI does not keep the older value's CI."""
    from hub.results import MetricResult
    from hub.report import format_rows
    from hub.store import RunRecord, Store, VariantRecord

    store = Store(tmp_path / "home")
    for vid in ("a", "b"):
        store.add_variant(VariantRecord(
            id=vid, name=vid, task="text-classification", base_model="tiny", peft_method="none", labels=["x", "y"],
            dataset={"source": "d"}, peft_config={}, hyperparameters={}, run_config={}, config_hash="c", seed=0,
            versions={}, created_at=1.0))

    def run(vid, when, metrics, steps):
        """``steps``: (evaluator, options, metric names) per step; the values are MetricResults."""
        store.add_run(RunRecord(variant_id=vid, engine="torch-fp32", suite="s", dataset="d", split="test",
                                data_hash="h", config_hash="c", seed=0, versions={}, n_examples=5, duration_s=0.1,
                                created_at=when, suite_steps=[{"evaluator": e, "options": o, "metrics": m}
                                                              for e, o, m in steps]), metrics)

    run("a", 1.0, [MetricResult("accuracy", 0.9, 0.8, 0.95), MetricResult("flip_rate", 0.1)],
        [("classification", {}, ["accuracy"]), ("robustness", {}, ["flip_rate"])])
    run("b", 2.0, [MetricResult("accuracy", 0.8, 0.7, 0.9), MetricResult("flip_rate", 0.2)],
        [("classification", {}, ["accuracy"]), ("robustness", {}, ["flip_rate"])])
    assert all("settings" not in r for r in store.leaderboard())
    assert "settings" not in format_rows(store.leaderboard(), "csv").splitlines()[0]

    run("a", 3.0, [MetricResult("flip_rate", 0.4)], [("robustness", {"severity": 0.3, "attack": False}, ["flip_rate"])])
    run("b", 4.0, [MetricResult("accuracy", 0.85), MetricResult("comprehensiveness/ig", 0.3)],
        [("classification", {"bootstrap": 0}, ["accuracy"]), ("explain", {"max_examples": 20}, ["comprehensiveness/ig"])])
    rows = {r["variant"]: r for r in store.leaderboard()}
    assert rows["a"]["flip_rate"] == 0.4 and rows["a"]["settings"] == "robustness severity=0.3, attack=False"
    assert rows["b"]["accuracy"] == 0.85 and "accuracy_ci" not in rows["b"]      # not 0.8's interval
    assert rows["b"]["settings"] == "classification bootstrap=0; explain max_examples=20"
    header = format_rows(store.leaderboard(), "csv").splitlines()[0].split(",")
    assert header[-1] == "settings" and header.count("settings") == 1
    assert format_rows(store.leaderboard(), "table").splitlines()[0].split()[-1] == "settings"

    # b's accuracy is run again with the defaults: only the explain step's options still stand behind b's row
    run("b", 5.0, [MetricResult("accuracy", 0.86)], [("classification", {}, ["accuracy"])])
    assert {r["variant"]: r for r in store.leaderboard()}["b"]["settings"] == "explain max_examples=20"
    run("a", 6.0, [MetricResult("flip_rate", 0.15)], [("robustness", {}, ["flip_rate"])])   # back to the defaults
    assert "settings" not in {r["variant"]: r for r in store.leaderboard()}["a"]
