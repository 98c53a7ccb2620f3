"""The Leaderboard tab: column groups, legend, filters, search, downloads, and the API endpoint.

The pure view (``hub/ui/columns.py``) runs on hand-made rows shaped like ``Store.leaderboard()``;
the app is built over a store holding variant and run rows only (no model is read), launched,
and driven with gradio_client.
"""

from __future__ import annotations

import csv
import json

import pytest

from hub.results import MetricResult
from hub.store import RunRecord, Store, VariantRecord
from hub.ui import columns

ORT = "onnxruntime-int8-0a1b2c"


def _rows() -> list[dict]:
    return columns.enrich([
        {"variant": "v-full", "name": "topics-full", "method": "full", "engine": "torch-fp32", "dataset": "bbc",
         "split": "test", "accuracy": 0.91234, "accuracy_ci": [0.88, 0.94], "ece": 0.05, "flip_rate": 0.1,
         "toxicity_max": 0.2, "p50_ms_b1_s128": 12.5, "throughput_b32_s128": 300.0, "f1/sport": 0.9,
         "comprehensiveness/occlusion": 0.4, "brand_new_metric": 0.5},
        {"variant": "v-lora", "name": "topics-lora", "method": "lora", "engine": ORT, "dataset": "bbc",
         "split": "validation", "accuracy": 0.85, "agreement": 0.99, "settings": "robustness severity=0.3"},
        {"variant": "v-lora", "name": "topics-lora", "method": "lora", "engine": "torch-fp32", "dataset": "tweets",
         "split": "test", "accuracy": 0.80},
    ], {"v-full": {"task": "text-classification", "base_model": "minilm"},
        "v-lora": {"task": "text-classification", "base_model": "minilm"}})


@pytest.mark.parametrize(("name", "group", "better"), [
    ("accuracy", "task", "higher"), ("ece", "calibration", "lower"), ("flip_rate", "robustness", "lower"),
    ("flip_synonym", "robustness", "lower"), ("acc_typo", "robustness", "higher"),
    ("toxicity_ratio", "safety", "lower"), ("output_toxicity_max", "safety", "lower"),
    ("fairness_flip_rate", "safety", "lower"), ("fairness_flip/gender", "breakdowns", "lower"),
    ("comprehensiveness/ig", "faithfulness", "higher"), ("sufficiency/occlusion", "faithfulness", "lower"),
    ("ig_completeness_gap", "faithfulness", "lower"), ("p50_ms_b32_s128", "efficiency", "lower"),
    ("throughput_b1_s64", "efficiency", "higher"), ("max_abs_logit_diff", "parity", "lower"),
    ("f1/sport", "breakdowns", "higher"), ("precision", "model", None), ("split", "lineage", None),
    ("accuracy_ci", "task", None), ("brand_new_metric", "other", None),
])
def test_every_metric_maps_to_a_group_and_direction(name, group, better):
    column = columns.describe(name)
    assert (column.group, column.better) == (group, better)
    assert column.description


def test_engine_ids_give_backend_and_precision():
    assert columns.engine_parts("torch-fp32") == ("torch", "fp32")
    assert columns.engine_parts(ORT) == ("onnxruntime", "int8")
    rows = _rows()
    assert (rows[1]["backend"], rows[1]["precision"], rows[1]["base_model"]) == ("onnxruntime", "int8", "minilm")


def test_default_view_groups_columns_and_describes_each():
    frame = columns.view(_rows())
    shown = list(frame.columns)
    assert shown[:3] == ["variant", "name", "engine"]
    assert shown.index("accuracy") + 1 == shown.index("accuracy_ci")      # CI right after its metric
    assert shown.index("accuracy_ci") < shown.index("ece") < shown.index("flip_rate") < shown.index("toxicity_max")
    assert shown.index("toxicity_max") < shown.index("p50_ms_b1_s128") < shown.index("method")
    assert {"backend", "precision", "base_model", "task", "dataset", "split", "settings"} <= set(shown)
    for off in ("f1/sport", "comprehensiveness/occlusion", "brand_new_metric", "agreement"):
        assert off not in shown                                             # groups off by default
    assert "Other metrics" not in columns.legend(shown)
    legend = columns.legend(shown)
    for name in shown:
        assert columns.describe(name).group != "other"
        assert f"`{name}`" in legend
    assert "`ece` (↓ lower is better)" in legend and "`accuracy` (↑ higher is better)" in legend
    assert frame.loc[0, "accuracy"] == 0.9123 and frame.loc[0, "accuracy_ci"] == "[0.880, 0.940]"


def test_groups_pick_columns_and_unknown_metrics_show_as_other():
    shown = list(columns.view(_rows(), ["faithfulness", "other", "parity"]).columns)
    assert shown == ["variant", "name", "engine", "comprehensiveness/occlusion", "agreement", "brand_new_metric"]
    assert "direction unknown" in columns.legend(shown)
    assert list(columns.view(_rows(), []).columns) == ["variant", "name", "engine"]


def test_filters_search_and_choices():
    rows = _rows()
    choices = columns.facet_choices(rows)
    assert choices["backend"] == ["onnxruntime", "torch"] and choices["method"] == ["full", "lora"]
    assert choices["split"] == ["test", "validation"] and choices["dataset"] == ["bbc", "tweets"]
    pick = columns.view(rows, filters={"backend": ["torch"], "split": ["test"]})
    assert list(pick["variant"]) == ["v-full", "v-lora"]
    pick = columns.view(rows, filters={"method": ["lora"], "dataset": ["bbc", "tweets"], "precision": []})
    assert list(pick["engine"]) == [ORT, "torch-fp32"]
    assert list(columns.view(rows, search="TOPICS-lora tweets")["dataset"]) == ["tweets"]
    assert columns.view(rows, search="nothing like it").empty
    empty = columns.view(rows, filters={"backend": ["tensorrt"]})
    assert empty.empty and "accuracy" in empty.columns                     # columns stay put
    other_task = columns.view(rows, filters={"task": ["text-generation"]})  # columns are the chosen task's
    assert other_task.empty and list(other_task.columns) == list(columns.IDENTITY)
    assert columns.mixed_tasks(rows) == ""                                 # one task: nothing to say


def test_downloads_hold_the_shown_table_and_whole_rows(tmp_path):
    from hub.ui.leaderboard import download_files

    rows = columns.filter_rows(_rows(), {"method": ["lora"]})
    frame = columns.view(rows, ["task"])
    csv_path, json_path = download_files(rows, frame, tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == list(frame.columns) and len(table) == 3
    whole = json.loads(open(json_path, encoding="utf-8").read())
    assert [r["engine"] for r in whole] == [ORT, "torch-fp32"] and whole[0]["settings"]
    assert download_files(rows, frame, tmp_path) == (csv_path, json_path)  # same content, same file
    assert download_files([], columns.view([]), tmp_path) == (None, None)


# -- the app over a store --------------------------------------------------------------------

def _store(home) -> Store:
    store = Store(home)
    store.add_variant(VariantRecord(
        id="tiny-lb-0001", name="tiny-topics", task="text-classification", base_model="tiny-bert",
        peft_method="lora", labels=["a", "b"], dataset={"source": "fixture"}, peft_config={},
        hyperparameters={}, run_config={}, config_hash="c", seed=0, versions={}))
    for engine, accuracy in (("torch-fp32", 0.8), (ORT, 0.75)):
        run = RunRecord(variant_id="tiny-lb-0001", engine=engine, suite="default", dataset="fixture", split="test",
                        data_hash="h", config_hash="c", seed=0, versions={}, n_examples=10, duration_s=0.1)
        store.add_run(run, [MetricResult("accuracy", accuracy, 0.6, 0.9),
                            MetricResult("flip_rate", 0.2, higher_is_better=False),
                            MetricResult("novel_score", 0.3)], [])
    return store


def test_store_rows_add_the_variant_lineage(tmp_path):
    from hub.ui.leaderboard import store_rows

    rows = store_rows(_store(tmp_path / "home"))
    assert {(r["backend"], r["precision"], r["base_model"], r["method"]) for r in rows} == {
        ("torch", "fp32", "tiny-bert", "lora"), ("onnxruntime", "int8", "tiny-bert", "lora")}


def test_app_leaderboard_endpoint_returns_the_whole_table(tmp_path):
    from gradio_client import Client

    from hub.ui.app import launch
    from tests.test_ui import free_port

    port = free_port()
    demo = launch(_store(tmp_path / "home"), port=port, prevent_thread_lock=True)
    try:
        out = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False).predict(
            api_name="/leaderboard")
    finally:
        demo.close()
    rows = [dict(zip(out["headers"], row)) for row in out["data"]]
    assert {r["engine"] for r in rows} == {"torch-fp32", ORT}
    assert {"accuracy", "accuracy_ci", "flip_rate", "novel_score", "split"} <= set(out["headers"])


def test_tab_reload_and_filters_update_the_view(tmp_path):
    import gradio as gr

    from hub.ui.app import AppContext
    from hub.ui.app_config import AppConfig
    from hub.ui.leaderboard import build_leaderboard_tab

    store = Store(tmp_path / "home")
    with gr.Blocks():
        board = build_leaderboard_tab(AppContext(store, None, AppConfig()))   # built over an empty store
    reload = board["reload"][0][0]
    assert not store.root.exists()
    _store(store.root)
    no_filters = [[] for _ in columns.FACETS]
    state, mixed, table, legend, csv_button, json_button, *dropdowns = reload(
        list(columns.DEFAULT_GROUPS), "", *no_filters)
    assert mixed.visible is False                                  # one task in the store
    assert len(state) == 2 and len(table.value["data"]) == 2
    assert "novel_score" not in table.value["headers"] and "`flip_rate` (↓ lower is better)" in legend
    assert csv_button.value and json_button.value
    backend = dict(zip(columns.FACETS, dropdowns))["backend"]
    assert [c[0] for c in backend.choices] == ["onnxruntime", "torch"]
    filters = [["onnxruntime"] if f == "backend" else [] for f in columns.FACETS]
    state, _, table, legend = reload(["task", "other"], "", *filters)[:4]
    assert [r[2] for r in table.value["data"]] == [ORT]
    assert "novel_score" in table.value["headers"]


def test_model_columns_show_parameters_and_the_share_a_pruned_variant_kept():
    from types import SimpleNamespace

    from hub.ui.leaderboard import model_size

    plain = SimpleNamespace(train_summary={"trainable_parameters": {"trainable": 5, "total": 22_713_216}})
    pruned = SimpleNamespace(train_summary={"trainable_parameters": {"total": 18_500_000},
                                            "pruning": {"parameters": {"before": 22_713_216, "after": 18_500_000,
                                                                       "kept": 0.81451}}})
    assert model_size(plain) == {"params_m": 22.71}
    assert model_size(pruned) == {"params_m": 18.5, "params_kept": 0.8145}
    assert model_size(SimpleNamespace(train_summary={})) == {}
    rows = columns.enrich([{"variant": "p", "engine": "torch-fp32", "accuracy": 0.9}], {"p": model_size(pruned)})
    frame = columns.view(rows, groups=["task", "model"])
    assert {"params_m", "params_kept"} <= set(frame.columns)
    assert columns.datatypes(["params_m", "params_kept", "backend"]) == ["number", "number", "str"]
