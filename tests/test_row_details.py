"""Details of one leaderboard row (``hub/ui/row_details.py``), from a store written directly:
a variant, a torch-model run with per-example predictions, and a built engine with its parity
and latency reports and build run. No model is read; the app is launched for ``/row_details``."""

from __future__ import annotations

import gradio as gr
import pandas as pd
import pytest

from hub.results import MetricResult
from hub.engines.base import EngineRecord
from hub.errors import UserError
from hub.store import RunRecord, Store, VariantRecord
from hub.ui import columns, row_details

VARIANT, ENGINE = "tiny-rd-0001", "onnxruntime-int8-0a1b2c"
LABELS = ["money", "sport"]
PARITY = {"n": 3, "agreement": 1.0, "max_abs_logit_diff": 0.01, "accuracy_delta": 0.0, "passed": True}
LATENCY = {"engine": ENGINE, "machine": {"cpu": "test"}, "cells": [
    {"batch": 1, "seq": 32, "p50_ms": 2.5, "p95_ms": 3.0, "throughput": 400.0, "runs": 5}]}


def _predictions(probs_sport: list[float]) -> list[dict]:
    golds = ["sport", "money", "sport"]
    return [{"idx": i, "text": f"text {i}", "label": gold, "prediction": "sport" if p > 0.5 else "money",
             "probabilities": [1 - p, p]} for i, (gold, p) in enumerate(zip(golds, probs_sport))]


def _run(engine: str, suite: str, split: str = "test", **extra) -> RunRecord:
    return RunRecord(variant_id=VARIANT, engine=engine, suite=suite, dataset="fixture", split=split, data_hash="dh1",
                     config_hash="ch1", seed=3, versions={"torch": "2.x"}, n_examples=3, duration_s=0.1, **extra)


def _store(home, db: str | None = None) -> Store:
    store = Store(home, db=db)
    store.add_variant(VariantRecord(
        id=VARIANT, name="tiny-topics", task="text-classification", base_model="tiny-bert", peft_method="lora",
        labels=LABELS, dataset={"source": "fixture"}, peft_config={}, hyperparameters={},
        run_config={"train": {"epochs": 1}, "model": {"max_length": 32}}, config_hash="ch1", seed=3, versions={}))
    steps = [{"evaluator": "robustness", "options": {"severity": 0.3}, "metrics": ["flip_rate"]}]
    store.add_run(_run("torch-fp32", "default", suite_steps=steps),
                  [MetricResult("accuracy", 0.67), MetricResult("flip_rate", 0.2, higher_is_better=False)],
                  _predictions([0.9, 0.4, 0.2]))     # p(gold): 0.9, 0.6, 0.2
    store.add_run(_run("torch-fp32", "default", split="validation"), [MetricResult("accuracy", 0.5)], [])
    record = EngineRecord(id=ENGINE, variant_id=VARIANT, backend="onnxruntime", precision="int8",
                          options={"opt_level": 2}, max_length=32, parity=PARITY, latency=LATENCY)
    store.add_engine(record, _run(ENGINE, "build"), [MetricResult("accuracy", 0.67),
                                                     MetricResult("p50_ms_b1_s32", 2.5, higher_is_better=False)],
                     _predictions([0.7, 0.1, 0.45]))  # p(gold): 0.7, 0.9, 0.45
    return store


@pytest.fixture()
def store(tmp_path, db_url) -> Store:
    """The store of these tests, once on SQLite and once on PostgreSQL (``db_url``)."""
    return _store(tmp_path / "home", db_url)


def test_torch_row_details(store):
    details = row_details.row_details(store, VARIANT, "torch-fp32", "test")
    assert details["row"] == {"variant": VARIANT, "name": "tiny-topics", "engine": "torch-fp32", "split": "test",
                              "task": "text-classification"}
    assert details["run_config"]["train"] == {"epochs": 1}
    lineage = details["lineage"]
    assert (lineage["dataset"], lineage["split"], lineage["data_hash"], lineage["config_hash"], lineage["seed"]) == (
        "fixture", "test", "dh1", "ch1", 3)
    assert lineage["versions"] == {"torch": "2.x"} and lineage["created"].endswith("+00:00")
    assert [r["suite"] for r in lineage["runs"]] == ["default"]            # the validation run is another row
    assert "no parity or latency report" in details["engine"]["note"]
    assert details["suite"][0]["steps"][0]["options"] == {"severity": 0.3}
    worst = details["worst_examples"]
    assert [e["p_gold"] for e in worst] == [0.2, 0.6, 0.9]                 # largest loss first
    assert worst[0] == {"text": "text 2", "gold": "sport", "predicted": "money", "p_gold": 0.2}


def test_engine_row_details_hold_its_reports(store):
    details = row_details.row_details(store, VARIANT, ENGINE, "test", worst=2)
    engine = details["engine"]
    assert (engine["backend"], engine["precision"], engine["options"]) == ("onnxruntime", "int8", {"opt_level": 2})
    assert engine["parity"] == PARITY and engine["latency"] == LATENCY
    assert [r["suite"] for r in details["lineage"]["runs"]] == ["build"]
    assert [(e["text"], e["p_gold"]) for e in details["worst_examples"]] == [("text 2", 0.45), ("text 0", 0.7)]


def test_a_row_without_predictions_and_unknown_rows(store):
    assert row_details.row_details(store, VARIANT, "torch-fp32", "validation")["worst_examples"] == []
    for args in ((VARIANT, "torch-fp32", "train"), ("no-such-variant", "torch-fp32", "test"),
                 (VARIANT, "openvino-fp32-999", "test")):
        with pytest.raises(UserError, match="no leaderboard row .* press Refresh") as err:
            row_details.row_details(store, *args)
        assert str(store.root) not in str(err.value)


def test_worst_examples_skip_rows_without_a_known_gold_label():
    preds = [{"text": "a", "label": None, "prediction": "x", "probabilities": [0.5, 0.5]},
             {"text": "b" * 400, "label": "y", "prediction": "x", "probabilities": [0.8, 0.2]},
             {"text": "c", "label": "z", "prediction": "x", "probabilities": [0.8, 0.2]}]
    worst = row_details.worst_examples(preds, ["x", "y"])
    assert len(worst) == 1 and worst[0]["p_gold"] == 0.2 and len(worst[0]["text"]) == row_details.TEXT_CHARS


def test_find_row_uses_the_cells_not_the_position():
    rows = columns.enrich(_store_rows())
    frame = columns.view(rows)
    headers = list(frame.columns)
    for position in range(len(frame)):      # every shown row resolves to itself, whatever the order
        values = list(frame.iloc[::-1].iloc[position])
        found = row_details.find_row(rows, headers, values)
        assert (found["variant"], found["engine"], found["split"]) == tuple(values[headers.index(k)]
                                                                            for k in ("variant", "engine", "split"))
    narrow = columns.view(rows, ["task"])    # split hidden: the other cells pick the row
    values = list(narrow.iloc[1])
    assert row_details.find_row(rows, list(narrow.columns), values)["split"] == "validation"
    assert row_details.find_row(rows, headers, ["nobody"] * len(headers)) is None
    assert row_details.find_row(rows, ["name"], ["tiny-topics"]) is None


def _store_rows() -> list[dict]:
    return [{"variant": VARIANT, "name": "tiny-topics", "engine": "torch-fp32", "split": "test", "accuracy": 0.6667},
            {"variant": VARIANT, "name": "tiny-topics", "engine": "torch-fp32", "split": "validation",
             "accuracy": 0.5},
            {"variant": VARIANT, "name": "tiny-topics", "engine": ENGINE, "split": "test", "accuracy": 0.6667}]


def test_selecting_a_table_row_opens_its_details(store):
    from hub.ui.leaderboard import show_details, store_rows

    rows = store_rows(store)
    frame = columns.view(rows)
    position = next(i for i, e in enumerate(frame["engine"]) if e == ENGINE)
    evt = gr.SelectData(None, {"index": [position, 0], "value": VARIANT, "row_value": list(frame.iloc[position])})
    panel, heading, worst, lineage, engine, run_config, suite, selected = show_details(store, rows, frame, evt)
    assert panel.visible is True and selected == VARIANT and ENGINE in heading
    assert isinstance(worst, pd.DataFrame) and list(worst["p_gold"]) == [0.45, 0.7, 0.9]
    assert engine["parity"] == PARITY and run_config["model"] == {"max_length": 32}
    gone = gr.SelectData(None, {"index": [0, 0], "value": "x", "row_value": ["other", "x", "torch-fp32"]})
    with pytest.raises(gr.Error, match="no longer on the leaderboard"):
        show_details(store, rows, frame.iloc[:, :3], gone)


def test_row_details_endpoint(store):
    from gradio_client import Client

    from hub.ui.app import launch
    from tests.test_ui import free_port

    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        out = client.predict(VARIANT, ENGINE, "test", api_name="/row_details")
        assert out["engine"]["latency"] == LATENCY and out["worst_examples"][0]["p_gold"] == 0.45
        with pytest.raises(Exception, match="no leaderboard row"):
            client.predict(VARIANT, ENGINE, "nosplit", api_name="/row_details")
        assert client.predict(VARIANT, "torch-fp32", "test", api_name="/row_details")["lineage"]["seed"] == 3
    finally:
        demo.close()
