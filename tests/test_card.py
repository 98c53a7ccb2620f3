"""The model card (hub/card.py): front matter, model-index round trip, limitations, no local paths.

The store holds the tiny random variant of tests/test_ui.py (its base model a local folder, so
a card that leaked paths would show it) with a robustness run and a safety run written
directly through ``store.add_run``, and a LoRA variant record on the ``minilm`` alias.
"""

from __future__ import annotations

import dataclasses

import pytest
import yaml
from huggingface_hub.repocard_data import model_index_to_eval_results

from hub.results import MetricResult
from hub.card import build_card, category, scrub
from hub.errors import UserError
from hub.store import RunRecord, Store, VariantRecord
from tests.test_ui import LABELS, VARIANT_ID, add_tiny_variant

LORA_ID = "tiny-lora-0002"
ENGINE_ID = "eng-ort-int8-0001"


def add_robustness_run(store: Store, variant_id: str = VARIANT_ID) -> str:
    """Typos flip most (0.4), then synonyms (0.2); two stored flips of typos, one of synonyms."""
    flips = [{"type": "flip", "idx": i, "perturbation": p, "text": f"the match was won {i}",
              "perturbed": f"teh mtach was won {i}", "label": "sport", "before": "sport", "after": "music"}
             for i, p in [(0, "typos"), (3, "typos"), (5, "synonyms")]]
    run = RunRecord(variant_id=variant_id, engine="torch-fp32", suite="robustness", dataset="fixture",
                    split="test", data_hash="h0", config_hash="cfg0", seed=7, versions={}, n_examples=30,
                    duration_s=0.1)
    return store.add_run(run, [MetricResult("clean_accuracy", 0.8), MetricResult("acc_typos", 0.5),
                               MetricResult("flip_typos", 0.4, higher_is_better=False),
                               MetricResult("flip_synonyms", 0.2, higher_is_better=False),
                               MetricResult("flip_contractions", 0.0, higher_is_better=False),
                               MetricResult("flip_rate", 0.45, higher_is_better=False)],
                         records={"robustness": flips})


def add_safety_run(store: Store, variant_id: str = VARIANT_ID) -> str:
    """Identity groups: gender/female moves p most (0.31), then religion/muslim (0.12)."""
    swaps = [{"idx": 2, "axis": "gender", "target": "female", "original": "he scored twice",
              "counterfactual": "she scored twice", "swaps": [["he", "she"]], "prediction": "sport",
              "counterfactual_prediction": "music", "dp": 0.5}]
    metrics = [MetricResult("fairness_flip_rate", 0.1, 0.0, 0.2, higher_is_better=False),
               MetricResult("fairness_mean_dp", 0.08, higher_is_better=False)]
    for group, dp, flip in [("gender/female", 0.31, 0.25), ("gender/male", 0.02, 0.0), ("religion/muslim", 0.12, 0.1)]:
        metrics += [MetricResult(f"fairness_dp/{group}", dp, higher_is_better=False),
                    MetricResult(f"fairness_flip/{group}", flip, higher_is_better=False)]
    metrics += [MetricResult("fairness_dp/gender", 0.9, higher_is_better=False)]   # an axis, not a group
    run = RunRecord(variant_id=variant_id, engine="torch-fp32", suite="safety", dataset="fixture",
                    split="test", data_hash="h0", config_hash="cfg0", seed=7, versions={}, n_examples=30,
                    duration_s=0.1)
    return store.add_run(run, metrics, records={"fairness": swaps})


def add_lora_record(store: Store, local_path: str) -> VariantRecord:
    """A LoRA variant's record only (the card reads no weights); its PEFT config names a local path."""
    record = VariantRecord(
        id=LORA_ID, name="tiny-lora", task="text-classification", base_model="minilm", peft_method="lora",
        labels=LABELS, dataset={"source": "bbc-news", "hashes": {"test": "abc123"}},
        peft_config={"r": 8, "lora_alpha": 16, "base_model_name_or_path": local_path},
        hyperparameters={"learning_rate": 5e-4, "epochs": 1}, run_config={}, config_hash="cfg1", seed=3,
        versions={"peft": "0.17.0"}, has_merged=False, has_adapter=True)
    store.add_variant(record)
    return record


def add_engine_run(store: Store, variant_id: str = VARIANT_ID, engine_id: str = ENGINE_ID,
                   predictions: list[dict] = ()) -> str:
    """An onnxruntime int8 engine record (no files: nothing loads it) and its build run with latency."""
    from hub.engines.base import EngineRecord

    store.add_engine(EngineRecord(id=engine_id, variant_id=variant_id, backend="onnxruntime", precision="int8",
                                  machine={"cpu": "AMD EPYC 9B14", "cores": 2}, parity={"passed": True}))
    run = RunRecord(variant_id=variant_id, engine=engine_id, suite="build", dataset="fixture", split="test",
                    data_hash="same-data", config_hash="cfg0", seed=7, versions={}, n_examples=24, duration_s=0.1)
    metrics = [MetricResult("accuracy", 0.75), MetricResult("p50_ms_b1_s128", 4.5, higher_is_better=False)]
    return store.add_run(run, metrics, predictions)


@pytest.fixture(scope="module")
def card_store(tiny_model_dir, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("card") / "home")
    add_tiny_variant(store, tiny_model_dir)
    add_robustness_run(store)
    add_safety_run(store)
    add_lora_record(store, str(tiny_model_dir))
    add_engine_run(store)
    return store


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_front_matter_of_a_full_fine_tune(card_store):
    card = build_card(card_store, VARIANT_ID)
    meta = front_matter(card.text)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-classification"
    assert "base_model" not in meta          # a local folder is no Hub id
    assert meta["datasets"] == ["fixture"]
    assert {"evalhub", "evalhub-robustness", "evalhub-safety", "evalhub-calibration"} <= set(meta["tags"])
    assert card.data.to_dict()["library_name"] == "transformers"


def test_no_local_path_in_the_card(card_store, tiny_model_dir):
    for variant in (VARIANT_ID, LORA_ID):
        text = build_card(card_store, variant).text
        assert str(tiny_model_dir) not in text and str(card_store.root) not in text
    assert "<local path>" in build_card(card_store, LORA_ID).text   # the PEFT config's base path, scrubbed


def test_model_index_round_trips(card_store):
    meta = front_matter(build_card(card_store, VARIANT_ID).text)
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "tiny-topics"
    by_metric = {r.metric_type: r for r in results}
    assert by_metric["accuracy"].metric_value == pytest.approx(0.833333)
    assert by_metric["flip_typos"].metric_value == pytest.approx(0.4)
    assert by_metric["fairness_dp/gender/female"].dataset_split == "test"
    assert {r.task_type for r in results} == {"text-classification"}
    torch = [r for r in results if r.metric_config == "engine=torch-fp32"]
    assert len(torch) == len(card_store.metrics(card_store.runs(VARIANT_ID)[0]["id"])) + 6 + 9
    engine = {r.metric_type: r for r in results if r not in torch}
    assert set(engine) == {"accuracy", "p50_ms_b1_s128"}
    assert engine["accuracy"].metric_config == f"engine={ENGINE_ID}"
    assert engine["p50_ms_b1_s128"].metric_config == f"engine={ENGINE_ID}; hardware=AMD EPYC 9B14, 2 cores"


def test_results_have_a_table_per_row_torch_first(card_store):
    text = build_card(card_store, VARIANT_ID).text
    torch = text.index("### engine `torch-fp32`, split `test`")
    engine = text.index(f"### engine `{ENGINE_ID}`, split `test`")
    assert torch < engine and "| `p50_ms_b1_s128` | latency | ↓ | 4.5000 |" in text[engine:]
    assert f"Engines built from it: `{ENGINE_ID}` (onnxruntime-int8)." in text and f"--engine {ENGINE_ID}" in text


def test_limitations_name_the_worst_perturbation_and_group(card_store):
    text = build_card(card_store, VARIANT_ID).text
    limits = text.split("## Limitations", 1)[1].split("## How to use", 1)[0]
    robustness = next(line for line in limits.splitlines() if line.startswith("- **Robustness**"))
    assert robustness.index("`typos`") < robustness.index("`synonyms`")
    assert "2 stored examples" in robustness and "`contractions`" in robustness
    assert "teh mtach" in limits                                   # the example flip of the worst one
    fairness = next(line for line in limits.splitlines() if line.startswith("- **Fairness**"))
    assert fairness.index("`gender/female`") < fairness.index("`religion/muslim`")
    assert "`gender/male`" in fairness and "flip rate 25.0%" in fairness and "`gender`" not in fairness
    assert "she scored twice" in limits


def test_a_peft_variant_is_an_adapter(card_store):
    card = build_card(card_store, "tiny-lora", repo_id="team/tiny-lora")
    meta = front_matter(card.text)
    assert meta["library_name"] == "peft" and meta["base_model_relation"] == "adapter"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["license"] == "apache-2.0"
    assert meta["datasets"] == ["bbc-news"] and "lora" in meta["tags"]
    assert "model-index" not in meta                              # no runs yet
    assert 'PeftModel.from_pretrained(base, "team/tiny-lora")' in card.text
    assert "not been evaluated yet" in card.text and "`abc123`" in card.text


def test_a_full_fine_tune_on_a_hub_base_is_a_finetune(card_store):
    record = dataclasses.replace(card_store.get_variant(VARIANT_ID), id="tiny-hub-0003", base_model="minilm")
    card_store.add_variant(record)
    meta = front_matter(build_card(card_store, "tiny-hub-0003").text)
    assert meta["base_model_relation"] == "finetune"
    assert "AutoModelForSequenceClassification.from_pretrained" in build_card(card_store, "tiny-hub-0003").text


def test_unknown_variant_is_a_user_error(card_store):
    with pytest.raises(UserError):
        build_card(card_store, "no-such-variant")


@pytest.mark.parametrize(("name", "axis"), [("accuracy", "task"), ("ece", "calibration"), ("flip_typos", "robustness"),
                                            ("fairness_dp/gender/female", "safety"), ("p50_ms_b1_s128", "latency"),
                                            ("comprehensiveness/ig", "faithfulness"), ("f1_macro", "task")])
def test_metric_categories(name, axis):
    assert category(name) == axis


def test_scrub_replaces_paths_only():
    assert scrub({"a": "/home/x/model", "b": ["./data.csv", "bert-base-uncased", "org/model", "data/train.csv",
                                              "C:\\data", "a/b/c"], "c": 3}) == {
        "a": "<local path>", "b": ["<local path>", "bert-base-uncased", "org/model"] + ["<local path>"] * 3, "c": 3}


def test_a_run_on_a_local_file_is_filed_under_its_name(card_store, tmp_path):
    record = dataclasses.replace(card_store.get_variant(VARIANT_ID), id="tiny-local-0004",
                                 dataset={"source": str(tmp_path / "news.csv")})
    card_store.add_variant(record)
    run = RunRecord(variant_id=record.id, engine="torch-fp32", suite="default", dataset=str(tmp_path / "news.csv"),
                    split="test", data_hash="h1", config_hash="cfg0", seed=7, versions={}, n_examples=3, duration_s=0.1)
    card_store.add_run(run, [MetricResult("accuracy", 0.5)])
    text = build_card(card_store, record.id).text
    meta = front_matter(text)
    assert "datasets" not in meta and str(tmp_path) not in text
    _, results = model_index_to_eval_results(meta["model-index"])
    assert [(r.dataset_name, r.dataset_type) for r in results] == [("news", "news")]
