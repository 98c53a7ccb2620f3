"""The `evalhub` CLI through subprocess: the happy path, and every bad input in the brief."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_texts, tiny_config, write_csv

ROOT = Path(__file__).parents[1]


def evalhub(*args, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVALHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=600)


def snapshot(home: Path) -> dict[str, str]:
    """Every file under the store with its content hash (the DB as its dumped rows)."""
    import sqlite3

    state = {}
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.startswith("results.db"):
            state[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    if (home / "results.db").exists():
        conn = sqlite3.connect(home / "results.db")
        state["db"] = hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
        conn.close()
    return state


def assert_user_error(result: subprocess.CompletedProcess, pattern: str) -> None:
    import re

    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert re.search(pattern, lines[0]), lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, tiny_csv):
    """A store with one variant trained and evaluated through the CLI."""
    root = tmp_path_factory.mktemp("cli")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_model_dir, tiny_csv)))
    home = root / "home"
    result = evalhub("--json", "train", str(config), home=home)
    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout.strip().splitlines()[-1])
    return {"home": home, "root": root, "config": config, **made}


def test_train_eval_list_show_leaderboard(trained):
    home, variant = trained["home"], trained["variant"]
    assert trained["run"].startswith("run-")
    listed = json.loads(evalhub("--json", "list", home=home).stdout)
    assert [v["id"] for v in listed] == [variant]
    again = evalhub("--json", "eval", variant, "--split", "validation", "--bootstrap", "20", home=home)
    assert again.returncode == 0, again.stderr
    run_id = json.loads(again.stdout)["run"]
    shown = json.loads(evalhub("--json", "show", variant[:12], home=home).stdout)
    assert {r["id"] for r in shown["runs"]} == {trained["run"], run_id}
    assert shown["variant"]["labels"] == ["money", "music", "sport"]
    board = json.loads(evalhub("leaderboard", "--format", "json", home=home).stdout)
    assert {(r["variant"], r["split"]) for r in board} == {(variant, "test"), (variant, "validation")}
    assert all(0 <= r["accuracy"] <= 1 for r in board)
    csv_out = evalhub("leaderboard", "--format", "csv", home=home).stdout.splitlines()
    assert csv_out[0].startswith("variant,method,engine,split,accuracy") and len(csv_out) == 3
    md = evalhub("leaderboard", "--format", "markdown", home=home).stdout.splitlines()
    assert md[0].startswith("| variant |") and md[1].startswith("|---")


def test_a_suite_file_runs_and_its_options_are_recorded(trained, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained["home"], home)
    suite = tmp_path / "quick.yaml"
    suite.write_text(yaml.safe_dump({"evaluators": [{"classification": {"bootstrap": 0}},
                                                    {"pii": {"types": ["email"]}}]}))
    result = evalhub("--json", "eval", trained["variant"], "--suite", str(suite), home=home)
    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run"]
    shown = json.loads(evalhub("--json", "show", trained["variant"], home=home).stdout)
    run = next(r for r in shown["runs"] if r["id"] == run_id)
    assert run["suite"] == "quick"          # a file without a name is called by its stem
    (classification, pii), = [run["suite_steps"]]
    assert classification["evaluator"] == "classification" and classification["options"] == {"bootstrap": 0}
    assert "accuracy" in classification["metrics"] and "pii_rate" not in classification["metrics"]
    assert pii.pop("seconds") >= 0         # each step's time, for the run's details
    assert pii == {"evaluator": "pii", "options": {"types": ["email"]}, "metrics": ["pii_rate", "pii_rate/email"]}
    metrics = {m["metric"]: m for m in shown["metrics"][run_id]}
    assert metrics["accuracy"]["ci_low"] is None            # bootstrap 0 reached the evaluator
    assert "pii_rate/email" in metrics and "pii_rate/phone" not in metrics
    text = evalhub("show", trained["variant"], home=home).stdout
    assert "options: classification bootstrap=0; pii types=['email']" in text


def test_validate_prints_the_config_hash(trained):
    result = evalhub("validate", str(trained["config"]), home=trained["home"])
    assert result.returncode == 0 and "valid" in result.stdout


def _bad_config(root: Path, name: str, mapping: dict | str) -> Path:
    path = root / name
    path.write_text(mapping if isinstance(mapping, str) else yaml.safe_dump(mapping))
    return path


def test_bad_configs_exit_2_and_leave_the_store_alone(trained, tiny_model_dir, tiny_csv):
    home, root = trained["home"], trained["root"]
    before = snapshot(home)
    base = tiny_config(tiny_model_dir, tiny_csv)
    empty = write_csv(root / "empty.csv", [])
    latin = root / "latin.csv"
    latin.write_bytes("text,label\ncaf\xe9 news,money\n".encode("latin-1"))
    cases = [
        ("malformed.yaml", "train: {learning_rate: [1\n", r"malformed YAML at line"),
        ("unknown.yaml", {**base, "train": {"lerning_rate": 1}}, r"unknown key 'lerning_rate'.*did you mean 'learning_rate'"),
        ("nocol.yaml", {**base, "data": {"source": str(tiny_csv), "text_column": "body"}}, r"missing column 'body'"),
        ("empty.yaml", {**base, "data": {"source": str(empty)}}, r"empty|no rows"),
        ("latin.yaml", {**base, "data": {"source": str(latin)}}, r"not valid UTF-8"),
        ("nofile.yaml", {**base, "data": {"source": str(root / "nope.csv")}}, r"not found"),
        ("boot.yaml", {**base, "eval": {"bootstrap": -1}}, r"eval.bootstrap must be a whole number >= 0"),
        ("seed.yaml", {**base, "seed": -1}, r"seed must be in \[0, 2\*\*32\), got -1"),
        ("logevery.yaml", {**base, "train": {"log_every": 0}}, r"train.log_every must be at least 1"),
        ("lr.yaml", {**base, "train": {"learning_rate": "inf"}}, r"train.learning_rate must be a finite number"),
        ("peftopts.yaml", {**base, "peft": {"method": "lora", "options": [1]}}, r"peft.options: expected a mapping"),
        ("positions.yaml", {**base, "model": {**base["model"], "max_length": 4096}},
         r"model.max_length is 4096, but .* has only 128 positions"),
        ("suite.yaml", {**base, "eval": {"suite": "robustnes"}},
         r"suite.yaml.eval.suite: unknown suite 'robustnes' \(did you mean 'robustness'\?\)"),
    ]
    for name, mapping, pattern in cases:
        assert_user_error(evalhub("train", str(_bad_config(root, name, mapping)), home=home), pattern)
    assert_user_error(evalhub("train", str(root / "missing.yaml"), home=home), r"config file not found")
    assert snapshot(home) == before


def test_bad_references_exit_2(trained):
    home = trained["home"]
    before = snapshot(home)
    assert_user_error(evalhub("show", "no-such-variant", home=home), r"no variant 'no-such-variant'")
    assert_user_error(evalhub("eval", trained["variant"], "--suite", "defualt", home=home),
                      r"unknown suite 'defualt' \(did you mean 'default'\?\)")
    assert_user_error(evalhub("eval", trained["variant"], "--engine", "warp", home=home), r"no engine 'warp' for .*build-engine")
    typo = _bad_config(trained["root"], "typo-suite.yaml", {"evaluators": [{"robustness": {"severty": 0.3}}]})
    assert_user_error(evalhub("eval", trained["variant"], "--suite", str(typo), home=home),
                      r"typo-suite.yaml: evaluator 'robustness' options: unknown key 'severty'.*did you mean 'severity'")
    assert_user_error(evalhub("eval", trained["variant"], "--suite", str(trained["root"] / "nope.yaml"), home=home),
                      r"nope.yaml: config file not found")
    assert_user_error(evalhub("build-engine", trained["variant"], "--backend", "torch", "--option", "x=[", home=home),
                      r"--option 'x=\[': the value is not valid YAML")
    assert_user_error(evalhub("list", home=trained["config"]), r"is a file, not a folder; give --home")
    assert_user_error(evalhub("eval", trained["variant"], "--batch-size", "0", home=home),
                      r"batch_size must be a whole number >= 1, got 0")
    assert_user_error(evalhub("eval", trained["variant"], "--bootstrap", "-1", home=home),
                      r"bootstrap must be a whole number >= 0 \(0 turns it off\), got -1")
    best = evalhub("eval", trained["variant"], "--engine", "best", home=home)
    assert_user_error(best, r"has no engine that passed parity; build one with `evalhub build-engine .* --backend auto`")
    assert best.stdout == "", "a wrong engine fails before anything is read or printed"
    assert_user_error(evalhub("leaderboard", "--format", "xml", home=home), r"invalid choice: 'xml'")
    assert snapshot(home) == before


def test_unseen_label_in_evaluation_data_exits_2(trained, tiny_model_dir):
    """The data file gained a class after training: scoring the variant on it is refused."""
    from hub.store import Store

    root, home = trained["root"], trained["root"] / "home-unseen"
    data = write_csv(root / "growing.csv", make_texts(240))
    config = _bad_config(root, "growing.yaml", tiny_config(tiny_model_dir, data))
    assert evalhub("train", str(config), "--no-eval", home=home).returncode == 0
    variant = Store(home).list_variants()[0]
    write_csv(data, make_texts(240) + [(f"weather rain storm cloud {i}", "weather") for i in range(30)])
    before = snapshot(home)
    assert_user_error(evalhub("eval", variant.id, home=home), r"label 'weather' .*never seen in training")
    assert snapshot(home) == before


def test_corrupt_weights_exit_2(trained, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(trained["home"], home)
    weights = home / "variants" / trained["variant"] / "model" / "model.safetensors"
    weights.write_bytes(b"not a safetensors file")
    before = snapshot(home)
    assert_user_error(evalhub("eval", trained["variant"], home=home), r"stored files cannot be loaded")
    assert snapshot(home) == before


def test_two_process_accelerate_run(tmp_path, tiny_model_dir, tiny_csv):
    """`accelerate launch --num_processes 2` on CPU (gloo) makes one variant, like a single process."""
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_model_dir, tiny_csv, train={"eval_every": 6})))
    env = {**os.environ, "EVALHUB_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "-m", "hub.cli", "--json", "train", str(config)]
    result = subprocess.run(launch, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    from hub.store import Store

    variants = Store(tmp_path / "home").list_variants()
    assert len(variants) == 1, "only the main process writes the variant"
    summary = variants[0].train_summary
    assert summary["steps"] == 12 and [h["step"] for h in summary["history"]] == [6, 12]
    assert len(Store(tmp_path / "home").runs(variants[0].id)) == 1
