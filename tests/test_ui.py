"""The Gradio app, driven through its API as a client would (STYLE habit 8).

The store holds one tiny random variant written directly (no training) and one run with
a couple of metrics; the app is launched on a free port and driven with gradio_client.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hub.results import MetricResult
from hub.store import RunRecord, Store, VariantRecord

LABELS = ["money", "music", "sport"]
VARIANT_ID = "tiny-ui-0001"


def add_tiny_variant(store: Store, model_dir: Path, variant_id: str = VARIANT_ID) -> VariantRecord:
    """Stage the tiny random BERT as a merged variant and record one evaluation run."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with store.stage_variant(variant_id) as tmp:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
            label2id={label: i for i, label in enumerate(LABELS)}, ignore_mismatched_sizes=True)
        model.save_pretrained(Path(tmp) / "model")
        AutoTokenizer.from_pretrained(model_dir).save_pretrained(Path(tmp) / "tokenizer")
    record = VariantRecord(
        id=variant_id, name="tiny-topics", task="text-classification", base_model=str(model_dir),
        peft_method="none", labels=LABELS, dataset={"source": "fixture"}, peft_config={},
        hyperparameters={}, run_config={"model": {"max_length": 32}, "task": "text-classification"},
        config_hash="cfg0", seed=7, versions={}, has_merged=True)
    store.add_variant(record)
    run = RunRecord(variant_id=variant_id, engine="torch-fp32", suite="default", dataset="fixture",
                    split="test", data_hash="h0", config_hash="cfg0", seed=7, versions={},
                    n_examples=30, duration_s=0.1)
    store.add_run(run, [MetricResult("accuracy", 0.8333333, 0.7, 0.95),
                        MetricResult("ece", 0.1234567, higher_is_better=False)], [])
    return record


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ui_store(tiny_model_dir, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("ui") / "home")
    add_tiny_variant(store, tiny_model_dir)
    return store


@pytest.fixture(scope="module")
def client(ui_store):
    from gradio_client import Client

    from hub.ui.app import launch

    port = free_port()
    demo = launch(ui_store, port=port, prevent_thread_lock=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    finally:
        demo.close()


def test_predict_matches_the_predictor(client, ui_store):
    from hub.registries import TASKS

    text = "the band played a new song on tour"
    out = client.predict(VARIANT_ID, text, api_name="/predict")
    got = {c["label"]: c["confidence"] for c in out["confidences"]}
    assert set(got) == set(LABELS)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-5)

    record = ui_store.get_variant(VARIANT_ID)
    predictor = TASKS.get(record.task).load_predictor(ui_store, record)
    expected = dict(zip(predictor.labels, predictor.predict_proba([text])[0]))
    for label in LABELS:
        assert got[label] == pytest.approx(float(expected[label]), abs=1e-5)
    assert out["label"] == max(expected, key=expected.get)


def test_leaderboard_returns_the_run(client):
    out = client.predict(api_name="/leaderboard")
    rows = [dict(zip(out["headers"], row)) for row in out["data"]]
    assert len(rows) == 1
    row = rows[0]
    assert row["variant"] == VARIANT_ID and row["name"] == "tiny-topics"
    assert row["engine"] == "torch-fp32" and row["split"] == "test"
    assert row["accuracy"] == pytest.approx(0.8333)
    assert row["ece"] == pytest.approx(0.1235)
    assert row["accuracy_ci"] == "[0.700, 0.950]"
    assert out["headers"].index("accuracy") < out["headers"].index("ece")


@pytest.mark.parametrize(("variant", "text", "message"), [
    (VARIANT_ID, "   ", "text box is empty"),
    ("no-such-variant", "the match ended in a draw", "Unknown variant"),
])
def test_user_mistakes_raise_clear_errors(client, variant, text, message):
    with pytest.raises(Exception, match=message):
        client.predict(variant, text, api_name="/predict")


def test_empty_store_builds_without_creating_it(tmp_path):
    from hub.ui.app import build_app
    from hub.ui.leaderboard import leaderboard_frame

    store = Store(tmp_path / "nothing")
    demo = build_app(store)
    assert {"/predict", "/leaderboard"} <= set(demo.get_api_info()["named_endpoints"])
    assert leaderboard_frame(store).empty
    assert not store.root.exists()
