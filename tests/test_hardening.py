"""Faults and hostile input through the CLI: one test per case of the hardening review.

Each test reproduces the case on the tiny model and checks the promise: one line on stderr,
exit code 2, no traceback, nothing echoed raw, and the store exactly as it was. The CLI runs
in-process (``hub.cli.main``) so the cases stay fast; the read-only and full-disk cases run
on a small tmpfs the test mounts (they need root, and skip with that reason otherwise).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import make_texts, tiny_config, write_csv
from tests.test_cli import snapshot

CONTROL = set(map(chr, range(0x20))) - {"\n"} | {"\x7f", "\x9b"}


def cli(*args: str, home: Path) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``evalhub --home HOME ARGS`` run in this process."""
    from hub.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--home", str(home), *args])
        except SystemExit as exc:   # argparse's own errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def assert_one_line(result: tuple[int, str, str], *needles: str) -> str:
    code, _, err = result
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err and not CONTROL & set(err)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, tiny_csv):
    root = tmp_path_factory.mktemp("hardening")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 4})))
    home = root / "home"
    code, out, err = cli("--json", "train", str(config), "--no-eval", home=home)
    assert code == 0, err
    return {"root": root, "home": home, "config": config, "variant": json.loads(out.splitlines()[-1])["variant"]}


@pytest.fixture
def copy(trained, tmp_path):
    """A copy of the trained store to damage."""
    home = tmp_path / "home"
    shutil.copytree(trained["home"], home)
    return home


def write(path: Path, mapping: dict | str) -> Path:
    path.write_text(mapping if isinstance(mapping, str) else yaml.safe_dump(mapping))
    return path


# -- 4: YAML alias bombs -------------------------------------------------------------------

def test_yaml_anchors_and_aliases_are_refused(trained, tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(ord("b"), ord("j")):
        prev = chr(i - 1)
        lines.append(f"{chr(i)}: &{chr(i)} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\ntask: text-classification\n")
    assert len(bomb.read_bytes()) < 1000
    assert_one_line(cli("validate", str(bomb), home=trained["home"]), "anchors and aliases", "line 1")
    suite = write(tmp_path / "suite.yaml", "evaluators: &e [classification]\nname: *e\n")
    assert_one_line(cli("eval", trained["variant"], "--suite", str(suite), home=trained["home"]), "anchors and aliases")
    deep = write(tmp_path / "deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_one_line(cli("validate", str(deep), home=trained["home"]), "nested more than")


# -- 6: ids echoed raw -----------------------------------------------------------------------

def test_ids_are_escaped_and_cut_in_messages(trained):
    home = trained["home"]
    line = assert_one_line(cli("show", "x\nevalhub: ok: variant deleted", home=home), "x\\nevalhub")
    assert "\n" not in line
    assert_one_line(cli("show", "\x1b]0;owned\x07\x1b[31mred", home=home), "\\x1b")
    line = assert_one_line(cli("show", "v" * 100_000, home=home))
    assert len(line) < 2000
    assert_one_line(cli("show", "hf_" + "A" * 30, home=home), "***")
    assert_one_line(cli("eval", trained["variant"], "--engine", "e\x1b[2J", home=home), "\\x1b")


# -- 7: everything a run needs is checked before work --------------------------------------------

@pytest.mark.parametrize("overrides, needle", [
    ({"eval": {"split": "dev"}}, "eval.split: 'dev' is not a split"),
    ({"peft": {"method": "lora", "options": {"r": -4}}}, "should be a positive integer"),
    ({"peft": {"method": "lora", "options": {"r": "eight"}}}, "peft.options.r: expected int, got str 'eight'"),
    ({"peft": {"method": "lora", "options": {"target_modules": ["nothing_here"]}}}, "peft rejects them"),
    ({"tracking": {"report_to": ["tensorbored"]}}, "unknown tracker 'tensorbored'"),
    ({"model": {"max_length": 4096}}, "has only 128 positions"),
    ({"eval": {"suite": "missing-suite.yaml"}}, "missing-suite.yaml: config file not found"),
    ({"eval": {"suite": "SUITE_WITH_TERMS"}}, "identity terms file"),
])
def test_validate_and_train_check_all_of_it_first(trained, tiny_model_dir, tiny_csv, tmp_path, overrides, needle):
    if overrides.get("eval", {}).get("suite") == "SUITE_WITH_TERMS":
        suite = write(tmp_path / "terms.yaml", {"evaluators": [{"fairness": {"terms": str(tmp_path / "no.yaml")}}]})
        overrides = {"eval": {"suite": str(suite)}}
    base = tiny_config(tiny_model_dir, tiny_csv)
    for key, value in overrides.items():   # merge one level deeper than tiny_config does
        base[key] = {**base.get(key, {}), **value}
    config = write(tmp_path / "run.yaml", base)
    home = tmp_path / "home"
    assert_one_line(cli("validate", str(config), home=home), needle)
    assert_one_line(cli("train", str(config), home=home), needle)
    assert not home.exists(), "a refused run creates no store"


# -- 8 and 12: the database file ------------------------------------------------------------------

@pytest.mark.parametrize("state", ["empty", "missing"])
def test_a_lost_database_beside_variant_folders_is_reported_not_recreated(copy, state):
    db = copy / "results.db"
    for extra in copy.glob("results.db-*"):
        extra.unlink()
    db.write_bytes(b"") if state == "empty" else db.unlink()
    for command in (["list"], ["leaderboard"], ["show", "x"], ["eval", "x"]):
        assert_one_line(cli(*command, home=copy), "results.db", "variants", "1 variant folders")
    assert db.exists() == (state == "empty") and (not db.exists() or db.stat().st_size == 0)


def _damage(db: Path) -> None:
    """Overwrite the pages after the first with junk (the header stays: SQLite opens it, then trips)."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    data[page:] = os.urandom(len(data) - page)
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("fault, needle", [
    ("garbage", "is damaged"),
    ("pages", "damaged"),
    ("directory", "is a folder, not a database"),
    ("newer", "written by a newer evalhub"),
])
def test_a_bad_database_is_one_line_and_left_alone(copy, fault, needle):
    db = copy / "results.db"
    if fault == "garbage":
        db.write_bytes(os.urandom(8192))
    elif fault == "pages":
        _damage(db)
    elif fault == "directory":
        for extra in copy.glob("results.db*"):
            extra.unlink()
        db.mkdir()
    else:
        conn = sqlite3.connect(db)
        record = json.loads(conn.execute("SELECT record FROM variants").fetchone()[0])
        conn.execute("UPDATE variants SET record = ?", (json.dumps({**record, "from_the_future": 1}),))
        conn.commit()
        conn.close()
    before = snapshot(copy) if fault == "newer" else None
    raw = db.read_bytes() if db.is_file() else None
    commands = [["list"], ["show", "x"], ["eval", "x"]] + ([["leaderboard"]] if fault != "newer" else [])
    for command in commands:
        assert_one_line(cli(*command, home=copy), needle)
    assert (db.read_bytes() if db.is_file() else None) == raw
    if before is not None:
        assert snapshot(copy) == before


# -- 10: suite steps whose options are not a mapping --------------------------------------------------

@pytest.mark.parametrize("step", [{"classification": [1, 2]}, {"robustness": "abc"}, {3: None}, 7])
def test_suite_step_options_must_be_a_mapping(trained, tmp_path, step):
    suite = write(tmp_path / "s.yaml", {"evaluators": [step]})
    assert_one_line(cli("eval", trained["variant"], "--suite", str(suite), home=trained["home"]), "s")


# -- 11: ports --------------------------------------------------------------------------------------

def test_ports(trained, monkeypatch):
    home = trained["home"]
    monkeypatch.setenv("GRADIO_SERVER_PORT", "abc")
    code, out, err = cli("list", home=home)
    assert code == 0 and trained["variant"] in out, err
    assert_one_line(cli("serve", home=home), "'abc' is not a port number")
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    assert_one_line(cli("serve", "--port", "99999", home=home), "'99999' is not a port number")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_one_line(cli("serve", "--port", str(port), home=home), f"port {port}", "is in use")
        assert_one_line(cli("demo", "--port", str(port), home=home), "is in use")


# -- 13: read-only and full stores ------------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mounted for this test (root only), unmounted after."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs for a read-only or full store needs root")
    point = tmp_path / "mnt"
    point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True).returncode:
        pytest.skip("this machine does not allow mounting a tmpfs (needed for a real read-only or full disk)")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_store_reads_and_refuses_to_write(trained, tmpfs):
    home = tmpfs / "home"
    shutil.copytree(trained["home"], home)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    code, out, err = cli("list", home=home)
    assert code == 0 and trained["variant"] in out, err
    assert_one_line(cli("eval", trained["variant"], home=home), "not writable", "Read-only file system")
    assert_one_line(cli("train", str(trained["config"]), home=home), "not writable")


def test_staging_that_is_a_file_is_found_before_the_work(copy, trained):
    shutil.rmtree(copy / "staging", ignore_errors=True)
    (copy / "staging").write_text("not a folder")
    before = snapshot(copy)
    assert_one_line(cli("train", str(trained["config"]), home=copy), "staging", "is a file")
    assert snapshot(copy) == before


def test_too_little_free_space_is_found_before_the_work(copy, trained, monkeypatch):
    monkeypatch.setenv("EVALHUB_MIN_FREE_MB", str(10**12))
    before = snapshot(copy)
    assert_one_line(cli("eval", trained["variant"], home=copy), "MB free", "EVALHUB_MIN_FREE_MB")
    assert snapshot(copy) == before


def test_a_disk_that_fills_mid_run_leaves_the_store_consistent(trained, tmpfs, monkeypatch):
    from hub.store import Store

    home = tmpfs / "home"
    shutil.copytree(trained["home"], home)
    monkeypatch.setenv("EVALHUB_MIN_FREE_MB", "0")   # the probe passes; the disk fills while the variant is saved
    free = shutil.disk_usage(tmpfs).free
    (tmpfs / "filler").write_bytes(b"\0" * max(0, free - 48 * 1024))
    rows_before = [v.id for v in Store(home).list_variants()]
    folders_before = sorted(p.name for p in (home / "variants").iterdir())
    code, _, err = cli("train", str(trained["config"]), "--no-eval", home=home)
    line = err.strip().splitlines()[-1]   # after the progress bars of the work done before the disk filled
    assert code == 2 and "Traceback" not in err, err
    assert line.startswith("evalhub: error: no space left on device"), line
    (tmpfs / "filler").unlink()
    assert [v.id for v in Store(home).list_variants()] == rows_before
    assert sorted(p.name for p in (home / "variants").iterdir()) == folders_before
    assert not any((home / "staging").iterdir()), "the partial folder is removed"


# -- 14: a variant whose folder is gone -----------------------------------------------------------------

def test_a_missing_variant_folder_says_so_and_can_be_removed(copy, trained):
    variant = trained["variant"]
    shutil.rmtree(copy / "variants" / variant)
    line = assert_one_line(cli("eval", variant, home=copy), "folder", "is missing", f"evalhub remove {variant}")
    assert "Repo id" not in line
    code, out, _ = cli("list", home=copy)
    assert code == 0 and "folder missing" in out
    assert_one_line(cli("remove", variant[:12], home=copy), "give its whole id")
    code, out, err = cli("--json", "remove", variant, home=copy)
    assert code == 0 and json.loads(out)["removed"] == variant, err
    assert cli("--json", "list", home=copy)[1].strip() == "[]"


def test_variant_json_is_never_read_back(copy, trained):
    path = copy / "variants" / trained["variant"] / "variant.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "name": "edited-by-hand"}))
    code, out, _ = cli("show", trained["variant"], home=copy)
    assert code == 0 and "edited-by-hand" not in out


# -- 9 (through the CLI): one-label data -----------------------------------------------------------------

def test_one_label_data_is_refused(tiny_model_dir, tmp_path):
    data = write_csv(tmp_path / "one.csv", [(text, "sport") for text, _ in make_texts(60)])
    config = write(tmp_path / "run.yaml", tiny_config(tiny_model_dir, data))
    assert_one_line(cli("validate", str(config), home=tmp_path / "home"), "'sport'")
    assert not (tmp_path / "home").exists()


def test_home_and_json_work_after_the_subcommand(trained):
    code, out, err = cli("list", "--json", "--home", str(trained["home"]), home=Path("/nonexistent-store"))
    assert code == 0 and [v["id"] for v in json.loads(out)] == [trained["variant"]], err
