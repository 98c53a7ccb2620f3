"""`evalhub export-space`: the folder it writes, the app in it run as a Space runs it, and bad input.

The source store holds two tiny random variants (tests/test_ui.py ``add_tiny_variant``) and
three engines recorded without building (a placeholder file each; the apps here are asked for
the torch model, so no engine is ever loaded). The exported ``app.py`` is started with
``python app.py`` from another working folder with an empty ``PYTHONPATH`` and queried
through ``gradio_client``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Iterator

import pytest

from hub.results import MetricResult
from hub.engines.base import EngineRecord
from hub.store import RunRecord, Store
from tests.test_ui import LABELS, add_tiny_variant, free_port

VARIANT_A, VARIANT_B = "tiny-space-aaaa", "tiny-space-bbbb"
TEXT = "the band played a new song on tour"


def add_fake_engine(store: Store, variant_id: str, engine_id: str, backend: str, passed: bool) -> None:
    """Record an engine (a placeholder file, its parity verdict) with its build run."""
    with store.stage_engine(variant_id, engine_id) as tmp:
        (tmp / "model.bin").write_bytes(b"placeholder")
    record = EngineRecord(id=engine_id, variant_id=variant_id, backend=backend, precision="fp32",
                          parity={"passed": passed})
    run = RunRecord(variant_id=variant_id, engine=engine_id, suite="build", dataset="fixture", split="test",
                    data_hash="h0", config_hash="cfg0", seed=7, versions={"torch": "x"}, n_examples=2, duration_s=0.1)
    predictions = [{"idx": i, "text": f"text {i}", "label": "music", "prediction": "sport",
                    "probabilities": [0.2, 0.3, 0.5]} for i in range(2)]
    store.add_engine(record, run, [MetricResult("accuracy", 0.5, 0.4, 0.6)], predictions)


@pytest.fixture(scope="module")
def source(tiny_model_dir, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("export") / "home")
    add_tiny_variant(store, tiny_model_dir, VARIANT_A)
    add_tiny_variant(store, tiny_model_dir, VARIANT_B)
    add_fake_engine(store, VARIANT_A, "onnxruntime-fp32-a1", "onnxruntime", passed=True)
    add_fake_engine(store, VARIANT_A, "openvino-fp32-a2", "openvino", passed=False)
    add_fake_engine(store, VARIANT_B, "onnxruntime-fp32-b1", "onnxruntime", passed=True)
    run = RunRecord(variant_id=VARIANT_A, engine="torch-fp32", suite="robustness", dataset="fixture", split="test",
                    data_hash="h0", config_hash="cfg0", seed=7, versions={}, n_examples=1, duration_s=0.1)
    store.add_run(run, [MetricResult("robust_accuracy", 0.75)], [],
                  {"robustness": [{"text": "a", "flipped": True}, {"text": "b", "flipped": False}]})
    return store


def run_rows(store: Store, run_id: str) -> tuple:
    return store.metrics(run_id), store.predictions(run_id), store.records(run_id)


def test_snapshot_holds_only_the_chosen_variant_engine_and_runs(source, tmp_path):
    from hub.space_export import export_space

    made = export_space(source, tmp_path / "space", kind="hub", variants=[VARIANT_A])
    out = Path(made["folder"])
    assert made["kind"] == "hub" and made["variants"] == [VARIANT_A]
    assert made["engines"] == {VARIANT_A: ["onnxruntime-fp32-a1"]}   # the passing one, not the failed openvino
    snap = Store(out / "store")
    assert [v.id for v in snap.list_variants()] == [VARIANT_A]
    assert [e.id for e in snap.list_engines()] == ["onnxruntime-fp32-a1"]
    assert (snap.engine_path(VARIANT_A, "onnxruntime-fp32-a1") / "model.bin").read_bytes() == b"placeholder"
    assert not snap.engine_path(VARIANT_A, "openvino-fp32-a2").exists()
    kept = [r for r in source.runs(VARIANT_A) if r["engine"] != "openvino-fp32-a2"]
    assert [r["id"] for r in snap.runs()] == [r["id"] for r in kept]
    for run in kept:
        assert run_rows(snap, run["id"]) == run_rows(source, run["id"])
        assert snap.runs(VARIANT_A)[kept.index(run)] == run
    assert not list(out.rglob("results.db-*")) and not (out / "store" / "staging").exists()
    assert not list(out.rglob("__pycache__")) and (out / "hub" / "ui" / "app.py").is_file()
    assert (out / "evaluators" / "safety" / "prompts").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space"]   # no temporary sibling left


def test_readme_and_requirements(source, tmp_path):
    from huggingface_hub import SpaceCard

    from hub.space_export import export_space

    out = Path(export_space(source, tmp_path / "space", kind="leaderboard")["folder"])
    card = SpaceCard.load(out / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == metadata.version("gradio")
    assert card.data.app_file == "app.py" and card.data.title == "evalhub leaderboard"
    assert 0 < len(card.data.short_description) <= 60
    assert "2 evalhub variants" in card.data.short_description
    assert card.data.models is None             # the fixtures' base model is a local folder, not a Hub id
    assert {"evalhub", "leaderboard", "text-classification"} <= set(card.data.tags)
    assert VARIANT_A in card.text and VARIANT_B in card.text
    lines = (out / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert pins["torch"] == metadata.version("torch").split("+")[0]
    assert pins["transformers"] == metadata.version("transformers")
    assert pins["onnxruntime"] == metadata.version("onnxruntime")    # both variants ship an onnxruntime engine
    assert "openvino" not in pins and not any(line.startswith("gradio") for line in lines)
    assert "tabs=['leaderboard']" in (out / "app.py").read_text()


def test_hub_model_ids_keep_hub_ids_only(tmp_path):
    from types import SimpleNamespace

    from hub.space_export import hub_model_ids

    records = [SimpleNamespace(base_model=name) for name in
               ("minilm", str(tmp_path), "./model", "org/model", "org/model", "a/b/c")]
    assert hub_model_ids(records) == ["sentence-transformers/all-MiniLM-L6-v2", "org/model"]


@pytest.mark.parametrize(("engine", "shipped"), [
    ("openvino", ["openvino-fp32-a2"]),          # a backend name picks the variant's latest of it
    ("onnxruntime-fp32-a1", ["onnxruntime-fp32-a1"]),
    ("torch", []),                               # the torch model only
])
def test_engine_option_picks_what_ships(source, tmp_path, engine, shipped):
    from hub.space_export import export_space

    made = export_space(source, tmp_path / "space", kind="demo", variants=[VARIANT_A], engine=engine)
    snap = Store(Path(made["folder"]) / "store")
    assert [e.id for e in snap.list_engines()] == shipped
    assert {r["engine"] for r in snap.runs()} == {"torch-fp32", *shipped}


def test_a_failed_export_leaves_nothing(source, tmp_path, monkeypatch):
    import hub.space_export as space_export

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr(space_export, "write_readme", broken)
    with pytest.raises(OSError):
        space_export.export_space(source, tmp_path / "new" / "parent" / "space", variants=[VARIANT_A])
    assert list(tmp_path.iterdir()) == []     # nor the folders made on the way to it


def cli(source: Store, *args: str) -> int:
    from hub.cli import main

    return main(["--home", str(source.root), "export-space", *args])


def test_cli_json_names_what_it_made(source, tmp_path, capsys):
    assert cli(source, str(tmp_path / "space"), "--kind", "demo", "--variant", VARIANT_B, "--json") == 0
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert made["kind"] == "demo" and made["variants"] == [VARIANT_B]
    assert made["engines"] == {VARIANT_B: ["onnxruntime-fp32-b1"]}
    assert Path(made["folder"]).joinpath("app.py").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--variant", "no-such-variant"], "no variant 'no-such-variant'"),
    (["--variant", VARIANT_A, "--engine", "onnxruntime-fp32-b1"], "no engine 'onnxruntime-fp32-b1' for"),
    (["--kind", "hub"], "is not empty"),
])
def test_bad_input_exits_2_and_writes_nothing(source, tmp_path, capsys, args, message):
    out = tmp_path / "space"
    if message == "is not empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    assert cli(source, str(out), *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    if message == "is not empty":
        assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    else:
        assert not out.exists()
    assert len(list(tmp_path.iterdir())) == (1 if message == "is not empty" else 0)


# -- the exported app, run as a Space runs it -------------------------------------------------------------

@contextlib.contextmanager
def running_app(folder: Path, cwd: Path, python: str = sys.executable, timeout_s: float = 240) -> Iterator[str]:
    """``python app.py`` from ``cwd`` on a free port; yields its URL once it answers, then stops it
    (its log is printed, so a failing test shows what the app said)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": "", "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1",
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "EVALHUB_HOME": str(cwd / "not-this-one")}
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / "app.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen([python, str(folder / "app.py")], cwd=cwd, env=env, stdout=sink,
                                   stderr=subprocess.STDOUT)
    try:
        yield _wait_until_up(process, f"http://127.0.0.1:{port}/", timeout_s)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(log.read_text(errors="replace")[-4000:])


def _wait_until_up(process: subprocess.Popen, url: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"app.py exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return url
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"app.py did not answer in {timeout_s}s")


def expected_probabilities(source: Store, variant_id: str) -> dict[str, float]:
    from hub.registries import TASKS

    record = source.get_variant(variant_id)
    predictor = TASKS.get(record.task).load_predictor(source, record)
    return {label: float(p) for label, p in zip(predictor.labels, predictor.predict_proba([TEXT])[0])}


def assert_predicts_like_the_source(url: str, source: Store) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False)
    out = client.predict(VARIANT_A, TEXT, "torch", api_name="/predict")
    got = {c["label"]: c["confidence"] for c in out["confidences"]}
    expected = expected_probabilities(source, VARIANT_A)
    assert set(got) == set(LABELS)
    for label in LABELS:
        assert got[label] == pytest.approx(expected[label], abs=1e-5)
    with pytest.raises(Exception, match="Unknown variant"):   # not exported: not there at all
        client.predict(VARIANT_B, TEXT, "torch", api_name="/predict")


def test_exported_hub_app_predicts_like_its_store(source, tmp_path):
    from hub.space_export import export_space

    folder = Path(export_space(source, tmp_path / "space", variants=[VARIANT_A])["folder"])
    found = subprocess.run([sys.executable, "-c", "import hub; print(hub.__file__)"], cwd=folder,
                           env={**os.environ, "PYTHONPATH": ""}, capture_output=True, text=True, check=True)
    assert Path(found.stdout.strip()).resolve() == (folder / "hub" / "__init__.py").resolve()
    with running_app(folder, tmp_path / "elsewhere") as url:
        assert_predicts_like_the_source(url, source)


def test_exported_leaderboard_serves_only_the_chosen_rows(source, tmp_path):
    from gradio_client import Client

    from hub.space_export import export_space

    folder = Path(export_space(source, tmp_path / "space", kind="leaderboard", variants=[VARIANT_B])["folder"])
    with running_app(folder, tmp_path / "elsewhere") as url:
        client = Client(url, verbose=False, download_files=False)
        out = client.predict(api_name="/leaderboard")
        rows = [dict(zip(out["headers"], row)) for row in out["data"]]
        assert {(row["variant"], row["engine"]) for row in rows} == {
            (VARIANT_B, "torch-fp32"), (VARIANT_B, "onnxruntime-fp32-b1")}
        assert "/predict" not in client.view_api(print_info=False, return_format="dict")["named_endpoints"]


@pytest.mark.slow
def test_exported_app_runs_in_a_fresh_venv(source, tmp_path):
    """The folder's requirements.txt installed into a new virtual environment (no system site
    packages), then app.py run from it and queried as above. Needs the package registry and
    several minutes; run it with ``bash scripts/test.sh -m slow -k export``."""
    from hub.space_export import export_space

    folder = Path(export_space(source, tmp_path / "space", variants=[VARIANT_A], engine="torch")["folder"])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # a Space installs gradio from README.md's sdk_version, then requirements.txt
    subprocess.run([python, "-m", "pip", "install", "-q", f"gradio=={metadata.version('gradio')}",
                    "-r", str(folder / "requirements.txt")], check=True, timeout=3000)
    with running_app(folder, tmp_path / "elsewhere", python=python, timeout_s=400) as url:
        assert_predicts_like_the_source(url, source)
