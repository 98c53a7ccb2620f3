"""Engine builds end to end on a tiny variant: staging, reports, the DB, eval --engine, auto."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hub.errors import UserError
from hub.run_config import parse_run_config
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def variant_store(tmp_path_factory, tiny_model_dir, tiny_csv):
    from hub.store import Store
    from tasks.text_classification.train import train

    store = Store(tmp_path_factory.mktemp("engines") / "home")
    cfg = parse_run_config(tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 20}))
    variant_id = train(cfg, store, show_progress=False)
    return store, variant_id


def quiet(*_):
    pass


def test_torch_fp32_engine_is_stored_with_reports(variant_store):
    from hub.engines.build import build_engine

    store, vid = variant_store
    eid = build_engine(store, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    record = store.get_engine(eid)
    folder = store.engine_path(vid, eid)
    assert json.loads((folder / "engine.json").read_text())["id"] == eid
    parity = json.loads((folder / "parity.json").read_text())
    assert parity == record.parity and parity["passed"] and parity["max_abs_logit_diff"] < 1e-5
    cells = json.loads((folder / "latency.json").read_text())["cells"]
    assert {(c["batch"], c["seq"]) for c in cells} == {(1, 32), (8, 32), (32, 32)}  # tiny max_length is 32
    assert all(c["p95_ms"] >= c["p50_ms"] > 0 for c in cells)
    row = next(r for r in store.leaderboard() if r["engine"] == eid)
    assert row["agreement"] == 1.0 and row["p50_ms_b1_s32"] > 0 and 0 <= row["accuracy"] <= 1
    assert not any(p for p in store.staging_dir.iterdir()), "no build leftovers in staging"
    # the same model explains alike: every ranked word in the same order, the same top words
    assert parity["explanation_texts"] > 0 and parity["explanation_topk_overlap"] == 1.0
    assert parity["explanation_tau"] == pytest.approx(1.0) and row["explanation_tau"] == pytest.approx(1.0)


def test_min_explanation_tau_gates_parity_and_bad_values_are_one_sentence(variant_store, monkeypatch):
    from evaluators.explain import agreement
    from hub.engines.build import build_engine
    from hub.errors import UserError

    store, vid = variant_store
    for options, says in (({"min_explanation_tau": "2"}, "expected a Kendall tau from -1 to 1"),
                          ({"explanation_texts": "-1"}, "expected a whole number of texts"),
                          ({"explanation_texts": "0", "min_explanation_tau": "0.5"}, "needs explanation_texts")):
        with pytest.raises(UserError, match=says):
            build_engine(store, vid, "torch", "fp32", options=options, log=quiet, budget_s=0.05)
    # an engine that ranks words unlike torch: its tau is scripted below the floor
    real = agreement.compare
    monkeypatch.setattr(agreement, "compare", lambda *a, **k: {**real(*a, **k), "explanation_tau": 0.2})
    with pytest.raises(UserError, match="parity"):
        build_engine(store, vid, "auto", "fp32", options={"candidates": ["torch-fp32"], "min_explanation_tau": "0.9"},
                     log=quiet)
    eid = build_engine(store, vid, "torch", "fp32", options={"explanation_texts": "0"}, log=quiet, budget_s=0.05)
    assert "explanation_tau" not in store.get_engine(eid).parity    # switched off


def test_onnxruntime_fp32_gives_the_same_labels_as_torch(variant_store):
    pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs the onnx extra")
    from evaluators.runner import run_suite
    from hub.engines.build import build_engine

    store, vid = variant_store
    eid = build_engine(store, vid, "onnxruntime", "fp32", log=quiet, budget_s=0.05)
    torch_run = run_suite(store, vid, "default", log=quiet, progress=False)
    ort_run = run_suite(store, vid, "default", engine=eid, log=quiet, progress=False)
    torch_rows, ort_rows = store.predictions(torch_run), store.predictions(ort_run)
    assert [r["prediction"] for r in torch_rows] == [r["prediction"] for r in ort_rows]
    np.testing.assert_allclose([r["probabilities"] for r in ort_rows], [r["probabilities"] for r in torch_rows],
                               atol=1e-4)
    assert store.runs(vid)[-1]["engine"] == eid
    # A backend name selects the variant's latest engine of that backend; 'best' its newest that passed parity.
    assert store.get_engine("onnxruntime", variant_id=vid).id == eid
    assert store.get_engine("best", variant_id=vid).id == store.best_engine(vid).id == eid
    second = build_engine(store, vid, "onnxruntime", "fp32", log=quiet, budget_s=0.05)
    assert store.get_engine("onnxruntime", variant_id=vid).id == second     # the latest, not "ambiguous"
    with pytest.raises(UserError, match="ambiguous"):
        store.get_engine("onnxruntime-fp32-")          # a bare id prefix still has to be unique


def test_best_engine_needs_one_that_passed_parity(tmp_path):
    from hub.store import Store

    store = Store(tmp_path / "home")
    with pytest.raises(UserError, match=r"v1 has no engine that passed parity; build one with "
                                        r"`evalhub build-engine v1 --backend auto`"):
        store.get_engine("best", variant_id="v1")
    assert store.best_engine("v1") is None


def test_failed_build_leaves_nothing_behind(variant_store, monkeypatch):
    from hub.engines import build
    from hub.engines.torch_backend import TorchBackend

    store, vid = variant_store
    before = [e.id for e in store.list_engines()]

    def explode(self, ctx, folder, precision):
        (folder / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(TorchBackend, "build", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        build.build_engine(store, vid, "torch", "fp32", log=quiet)
    assert [e.id for e in store.list_engines()] == before
    assert not list((store.variant_path(vid) / "engines").glob("*")) or all(
        (p / "engine.json").exists() for p in (store.variant_path(vid) / "engines").iterdir())
    assert not any(store.staging_dir.iterdir())


def test_bad_engine_requests_are_user_errors(variant_store):
    from evaluators.runner import run_suite
    from hub.engines.build import build_engine

    store, vid = variant_store
    with pytest.raises(UserError, match=r"no engine 'nope'"):
        run_suite(store, vid, engine="nope", log=quiet)
    with pytest.raises(UserError, match=r"unknown engine backend 'onnxrt' \(did you mean 'onnxruntime'\?\)"):
        build_engine(store, vid, "onnxrt", "fp32", log=quiet)
    with pytest.raises(UserError, match=r"backend 'torch' builds fp32, bf16, not 'int8'"):
        build_engine(store, vid, "torch", "int8", log=quiet)


def test_tensorrt_without_tensorrt_says_how_to_install(variant_store):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here; the missing-package message cannot be shown")
    from hub.engines.build import build_engine

    store, vid = variant_store
    with pytest.raises(UserError, match=r"backend 'tensorrt' needs tensorrt.*pip install"):
        build_engine(store, vid, "tensorrt", "fp16", log=quiet)


def test_corrupt_engine_file_is_a_user_error(variant_store, tmp_path):
    import shutil

    from evaluators.runner import run_suite
    from hub.engines.build import build_engine
    from hub.store import Store

    store, vid = variant_store
    copy = Store(tmp_path / "home")
    shutil.copytree(store.root, copy.root)
    eid = build_engine(copy, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    for weights in copy.engine_path(vid, eid).rglob("*.safetensors"):
        weights.write_bytes(b"garbage")
    with pytest.raises(UserError):
        run_suite(copy, vid, engine=eid, log=quiet)


def test_auto_picks_a_passing_candidate_and_says_why(variant_store, monkeypatch):
    from hub.engines import auto
    from hub.engines.build import build_engine

    store, vid = variant_store
    from hub.registries import ENGINES

    candidates = [("torch", "fp32")] + ([("onnxruntime", "fp32")] if ENGINES.get("onnxruntime")().is_available() else [])
    monkeypatch.setattr(auto, "available_candidates", lambda task: candidates)
    eid = build_engine(store, vid, "auto", "fp32", log=quiet)
    record = store.get_engine(eid)
    assert record.auto["chose"] == f"{record.backend}-{record.precision}"
    assert [f"{t['backend']}-{t['precision']}" for t in record.auto["trials"]] == [f"{b}-{p}" for b, p in candidates]
    chosen = next(t for t in record.auto["trials"] if t["backend"] == record.backend)
    assert chosen["passed"] and chosen["score_ms"] == min(t["score_ms"] for t in record.auto["trials"] if t["passed"])
    assert "fastest" in record.auto["why"]
    assert all(t["explanation_tau"] is not None for t in record.auto["trials"] if t["passed"])   # recorded per candidate


def test_auto_times_passing_candidates_in_alternating_rounds(monkeypatch):
    from types import SimpleNamespace

    from hub.engines import auto

    calls = []
    slow_round = {"a": 1}             # candidate a is disturbed once: the median must not see it

    def fake_report(predictor, tokenizer, *, batches, seqs, budget_s):
        calls.append(predictor.name)
        n = calls.count(predictor.name)
        base = {"a": 10.0, "b": 12.0}[predictor.name] * (50 if slow_round.get(predictor.name) == n else 1)
        return {"cells": [{"batch": 1, "p50_ms": base}, {"batch": 32, "p50_ms": base * 20}]}

    from hub.engines import reports
    from hub.registries import TASKS

    task = TASKS.get("text-classification")
    monkeypatch.setattr(reports, "latency_report", fake_report)
    built = [({"backend": "a", "precision": "int8", "passed": True}, SimpleNamespace(name="a")),
             ({"backend": "b", "precision": "int8", "passed": True}, SimpleNamespace(name="b")),
             ({"backend": "c", "precision": "int8", "passed": False}, SimpleNamespace(name="c"))]
    auto._time_rounds(task, built, SimpleNamespace(tokenizer=None, max_length=32), quiet)
    assert calls == ["a", "b"] * auto.ROUNDS                 # alternating; the failing one is not timed
    a, b, c = (trial for trial, _ in built)
    assert a["p50_ms_b1"] == 10.0 and a["p50_ms_b32"] == 200.0 and b["p50_ms_b1"] == 12.0
    assert "score_ms" not in c

    def broken_b(predictor, tokenizer, **kw):
        if predictor.name == "b":
            raise RuntimeError("out of memory")
        return fake_report(predictor, tokenizer, **kw)

    monkeypatch.setattr(reports, "latency_report", broken_b)
    built = [({"backend": n, "precision": "int8", "passed": True}, SimpleNamespace(name=n)) for n in "ab"]
    auto._time_rounds(task, built, SimpleNamespace(tokenizer=None, max_length=32), quiet)
    (a, _), (b, _) = built
    assert a["passed"] and "score_ms" in a
    assert not b["passed"] and "out of memory" in b["error"] and "score_ms" not in b
    assert auto._choose([a, b]) is a


def test_the_demo_tab_answers_from_an_engine(variant_store):
    """The app's /predict takes an engine id and answers as that engine's predictor does."""
    from gradio_client import Client

    from hub.engines.build import build_engine, load_engine_predictor
    from hub.ui.app import launch
    from hub.ui.demo_tab import default_engine
    from tests.test_ui import free_port

    store, vid = variant_store
    eid = build_engine(store, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    assert default_engine(store, vid) == eid, "the demo starts on the newest engine that passed parity"
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        text = "the striker scored a late goal for the team"
        out = client.predict(vid, text, eid, api_name="/predict")
    finally:
        demo.close()
    expected = load_engine_predictor(store, store.get_engine(eid)).predict_proba([text])[0]
    got = {c["label"]: c["confidence"] for c in out["confidences"]}
    assert got == pytest.approx(dict(zip(store.get_variant(vid).labels, expected)), abs=1e-5)


def test_a_deleted_engine_folder_is_one_message_and_the_app_keeps_serving(variant_store):
    import shutil

    from gradio_client import Client

    from hub.engines.build import build_engine
    from hub.ui.app import launch
    from tests.test_ui import free_port

    store, vid = variant_store
    eid = build_engine(store, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    shutil.rmtree(store.engine_path(vid, eid))
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        with pytest.raises(Exception, match="could not be loaded") as info:
            client.predict(vid, "the striker scored", eid, api_name="/predict")
        assert str(store.root) not in str(info.value)             # the server's paths stay on the server
        assert client.predict(vid, "the striker scored", "torch", api_name="/predict")["confidences"]
    finally:
        demo.close()


def test_bulk_loads_apply_the_backends_bulk_options(variant_store, monkeypatch):
    import torch

    from hub.engines.build import build_engine, load_engine_predictor
    from hub.engines.openvino_backend import OpenVinoBackend
    from hub.engines.torch_backend import TorchBackend

    assert OpenVinoBackend.bulk_options == {"mode": "throughput"}
    store, vid = variant_store
    eid = build_engine(store, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    seen = []
    original = TorchBackend.load

    def spy(self, folder, record, tokenizer, labels):
        seen.append(dict(record.options))
        return original(self, folder, record, tokenizer, labels)

    monkeypatch.setattr(TorchBackend, "load", spy)
    monkeypatch.setattr(TorchBackend, "bulk_options", {"threads": 1})
    record = store.get_engine(eid)
    threads = torch.get_num_threads()
    try:
        load_engine_predictor(store, record)
        bulk = load_engine_predictor(store, record, bulk=True)
    finally:
        torch.set_num_threads(threads)
    assert seen[0].get("threads") is None and seen[1]["threads"] == 1 and bulk.threads == 1
    assert store.get_engine(eid).options.get("threads") is None    # the stored record is untouched


def test_show_lists_every_auto_trial():
    from hub.report import trial_line

    assert trial_line({"backend": "openvino", "precision": "int8", "passed": True, "agreement": 1.0,
                       "p50_ms_b1": 5.64, "p50_ms_b32": 142.2}) == (
        "openvino-int8        b1 5.6 ms, b32 142.2 ms, agreement 1.0000, parity passed")
    assert trial_line({"backend": "onnxruntime", "precision": "int8", "passed": False, "agreement": 0.95}) == (
        "onnxruntime-int8     agreement 0.9500, parity failed")
    assert trial_line({"backend": "tensorrt", "precision": "fp16", "passed": False,
                       "error": "UserError: no GPU\nmore"}) == "tensorrt-fp16        left out: UserError: no GPU"


def test_parity_report_by_hand_and_non_finite_logits_fail():
    from hub.engines.reports import parity_report

    reference = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0], [0.0, 2.0]])
    labels = np.array([0, 1, 0, 0])
    same = parity_report(reference, reference + 0.1, labels)
    assert same["passed"] and same["agreement"] == 1.0 and same["max_abs_logit_diff"] == pytest.approx(0.1)
    assert same["accuracy_torch"] == same["accuracy_engine"] == 0.75
    one_off = parity_report(reference, reference[[0, 1, 2, 0]], labels)        # last row now says 0
    assert one_off["agreement"] == 0.75 and one_off["accuracy_delta"] == 0.25 and not one_off["passed"]
    nan = np.tile(reference, (100, 1))
    nan_labels = np.tile(labels, 100)
    broken = nan.copy()
    broken[0] = np.nan        # argmax reads NaN as the largest value: row 0 still "agrees"
    report = parity_report(nan, broken, nan_labels)
    assert report["agreement"] == 1.0 and not report["finite"] and not report["passed"]
    assert not parity_report(nan, np.where(nan > 1, np.inf, nan), nan_labels)["passed"]


def test_a_bad_max_length_option_is_a_user_error(variant_store):
    from hub.engines.build import build_engine

    store, vid = variant_store
    before = {e.id for e in store.list_engines(vid)}
    for value, pattern in (("abc", "expected a whole number of tokens"), ("0", "must be between 2 and the model.s 128 positions"),
                           ("100000", "must be between 2 and the model.s 128 positions")):
        with pytest.raises(UserError, match=f"--option max_length={value}: {pattern}"):
            build_engine(store, vid, "torch", "fp32", options={"max_length": value}, log=quiet, budget_s=0.05)
    assert {e.id for e in store.list_engines(vid)} == before


def test_an_engine_without_its_tokenizer_folder_is_a_user_error(variant_store):
    import shutil

    from hub.engines.build import build_engine, load_engine_predictor

    store, vid = variant_store
    eid = build_engine(store, vid, "torch", "fp32", log=quiet, budget_s=0.05)
    shutil.rmtree(store.engine_path(vid, eid) / "tokenizer")
    with pytest.raises(UserError, match=f"engine '{eid}': its tokenizer folder .* is missing; rebuild it"):
        load_engine_predictor(store, store.get_engine(eid))


def test_an_option_no_backend_reads_is_refused(variant_store):
    from hub.engines.build import build_engine, check_option_keys

    store, vid = variant_store
    check_option_keys({"quantization": "static", "static": "off", "compile": False, "opt_seq": 64, "max_length": 32})
    for backend in ("torch", "auto"):
        with pytest.raises(UserError, match=r"--option quantisation: no backend takes it \(did you mean 'quantization'"):
            build_engine(store, vid, backend, "fp32", options={"quantisation": "static"}, log=quiet)


def test_auto_candidates_option_names_what_it_searches():
    from hub.engines.auto import available_candidates, chosen_candidates
    from hub.registries import TASKS
    from hub.errors import UserError

    task = TASKS.get("text-classification")
    here = available_candidates(task)
    assert chosen_candidates(task, None) == here
    first = f"{here[0][0]}-{here[0][1]}"
    assert chosen_candidates(task, [first]) == [here[0]]
    assert chosen_candidates(task, first) == [here[0]]              # --option candidates=a,b reads as a list too
    with pytest.raises(UserError, match="'openvino-int4' is not a candidate on this machine"):
        chosen_candidates(task, ["openvino-int4"])
    with pytest.raises(UserError, match="give a list"):
        chosen_candidates(task, [])
