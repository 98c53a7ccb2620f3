"""`evalhub pull`: a save_pretrained folder, a PEFT adapter and Hub repos (the in-process server of
tests/hub_server.py) come in as external variants that `evalhub eval` scores like any other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hub.cli import main
from hub.errors import UserError
from hub.pull import pull_model
from hub.store import Store
from tests.conftest import make_texts

LABELS = ["money", "music", "sport"]            # tiny_csv's labels, sorted as hub/data.py names them
TEXTS = [text for text, _ in make_texts(12, seed=5)]


def _classifier(tiny_model_dir: Path, folder: Path, labels: list[str] | None = None) -> Path:
    """The tiny BERT saved as a seeded 3-label sequence classifier (LABEL_i when ``labels`` is None)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(3)
    kwargs = {"id2label": dict(enumerate(labels)), "label2id": {v: i for i, v in enumerate(labels)}} if labels else {}
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3,
                                                               ignore_mismatched_sizes=True, **kwargs)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def topic_model(tiny_model_dir, tmp_path_factory) -> Path:
    return _classifier(tiny_model_dir, tmp_path_factory.mktemp("topics") / "topic-model", LABELS)


@pytest.fixture(scope="module")
def generic_model(tiny_model_dir, tmp_path_factory) -> Path:
    return _classifier(tiny_model_dir, tmp_path_factory.mktemp("generic") / "generic-model")


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _probs(store: Store, variant: str, texts: list[str] = TEXTS) -> np.ndarray:
    from tasks.text_classification.predict import load_predictor

    return load_predictor(store, store.get_variant(variant)).predict_proba(texts)


def test_folder_with_data_evaluates_and_gets_a_leaderboard_row(topic_model, tiny_csv, store, capsys):
    home = str(store.root)
    code, out, err = _cli(capsys, "--home", home, "pull", str(topic_model), "--data", str(tiny_csv), "--json")
    assert code == 0, err
    variant = json.loads(out)["variant"]
    record = store.get_variant(variant)
    assert variant.startswith("topic-model-") and record.kind == "external"
    assert record.labels == LABELS and record.peft_method == "none" and not record.has_adapter
    assert record.dataset["source"] == str(tiny_csv) and "hashes" not in record.dataset
    external = record.train_summary["external"]
    assert external["source"] == str(topic_model) and external["commit"] is None and len(external["content_hash"]) == 16
    # the stored model is the folder's model: same probabilities as transformers gives
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(topic_model).eval()
    tok = AutoTokenizer.from_pretrained(topic_model)
    with torch.no_grad():
        want = model(**tok(TEXTS, padding=True, truncation=True, max_length=32, return_tensors="pt")).logits.softmax(-1)
    np.testing.assert_allclose(_probs(store, variant), want.numpy(), atol=1e-5)

    code, out, err = _cli(capsys, "--home", home, "eval", variant, "--bootstrap", "0", "--json")
    assert code == 0, err
    rows = [row for row in store.leaderboard() if row["variant"] == variant]
    assert len(rows) == 1 and 0 <= rows[0]["accuracy"] <= 1 and rows[0]["dataset"] == str(tiny_csv)
    # the same pull again is the same variant, not a second copy
    assert pull_model(store, str(topic_model), data=str(tiny_csv)) == variant
    assert len(store.list_variants()) == 1


def test_a_pulled_variant_builds_an_engine_that_passes_parity(topic_model, tiny_csv, store):
    from hub.engines.build import build_engine

    variant = pull_model(store, str(topic_model), data=str(tiny_csv))
    engine = build_engine(store, variant, "onnxruntime", "fp32", log=lambda *a: None, budget_s=0.05)
    assert store.get_engine(engine, variant_id=variant).parity["passed"]


def test_without_data_eval_says_to_pull_again_with_data(topic_model, store, capsys):
    variant = pull_model(store, str(topic_model))
    code, _, err = _cli(capsys, "--home", str(store.root), "eval", variant)
    assert code == 2
    assert err.strip() == f"evalhub: error: variant {variant} was pulled without --data; pull again with --data SOURCE"
    code, out, _ = _cli(capsys, "--home", str(store.root), "show", variant)
    assert code == 0 and f"pulled from {topic_model}" in out and "None steps" not in out


def test_label_mismatch_names_both_sets_and_label_map_fixes_it(generic_model, tiny_csv, store, capsys):
    with pytest.raises(UserError) as err:
        pull_model(store, str(generic_model), data=str(tiny_csv))
    assert str(err.value) == ("the model's labels {LABEL_0, LABEL_1, LABEL_2} do not match topics.csv's labels "
                              "{money, music, sport}; pass --label-map LABEL_0=money --label-map LABEL_1=music "
                              "--label-map LABEL_2=sport")
    with pytest.raises(UserError, match="--label-map 'LABEL_9': the model has no such label"):
        pull_model(store, str(generic_model), data=str(tiny_csv), label_map={"LABEL_9": "money"})
    assert store.list_variants() == []
    mapping = {"LABEL_0": "sport", "LABEL_1": "money", "LABEL_2": "music"}
    code, out, err = _cli(capsys, "--home", str(store.root), "pull", str(generic_model), "--data", str(tiny_csv),
                          *[f"--label-map={k}={v}" for k, v in mapping.items()], "--json")
    assert code == 0, err
    variant = json.loads(out)["variant"]
    record = store.get_variant(variant)
    assert record.labels == ["sport", "money", "music"]   # the model's order, the dataset's names
    config = json.loads((store.variant_path(variant) / "model" / "config.json").read_text())
    assert config["id2label"] == {"0": "sport", "1": "money", "2": "music"}
    assert config["label2id"] == {"sport": 0, "money": 1, "music": 2}
    assert _cli(capsys, "--home", str(store.root), "eval", variant, "--bootstrap", "0")[0] == 0


@pytest.mark.parametrize("config_file", ["config.json", "tokenizer_config.json"])
def test_custom_code_is_refused_and_never_runs(topic_model, tmp_path, store, config_file):
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(topic_model, folder)
    marker = tmp_path / "code-ran"
    (folder / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / config_file).read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomModel",
                          "AutoTokenizer": ["modeling_custom.CustomTokenizer", None]}
    (folder / config_file).write_text(json.dumps(config))
    with pytest.raises(UserError, match=rf"needs custom code \({config_file} has auto_map\); evalhub never runs"):
        pull_model(store, str(folder))
    assert not marker.exists() and store.list_variants() == []


def test_bad_folders_and_tasks_are_one_line(topic_model, tiny_model_dir, tmp_path, store):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="has no config.json"):
        pull_model(store, str(tmp_path / "empty"))
    with pytest.raises(UserError, match="no folder './nowhere'"):
        pull_model(store, "./nowhere")
    with pytest.raises(UserError, match="neither a folder nor a valid Hub repo id"):
        pull_model(store, "org/bad name!")
    with pytest.raises(UserError, match="did you mean 'text-classification'"):
        pull_model(store, str(topic_model), task="text-clasification")
    base = tmp_path / "encoder"   # a bare encoder (BertModel), no classification head
    from transformers import AutoModel

    AutoModel.from_pretrained(tiny_model_dir).save_pretrained(base)
    with pytest.raises(UserError, match=r"is not a sequence classifier \(architectures: 'BertModel'\)"):
        pull_model(store, str(base))
    with pytest.raises(UserError, match="--revision 'v1' is for Hub repos"):
        pull_model(store, str(topic_model), revision="v1")
    assert store.list_variants() == []


@pytest.fixture(scope="module")
def lora_adapter(tiny_model_dir, tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A LoRA adapter trained a few steps on the tiny BERT (base_model_name_or_path: its folder),
    and PeftModel's probabilities on TEXTS."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(1)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    base = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, id2label=dict(enumerate(LABELS)),
        label2id={v: i for i, v in enumerate(LABELS)}, ignore_mismatched_sizes=True)
    model = get_peft_model(base, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"]))
    rows = make_texts(48)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for start in range(0, len(rows), 16):
        batch = tok([t for t, _ in rows[start:start + 16]], padding=True, return_tensors="pt")
        labels = torch.tensor([LABELS.index(label) for _, label in rows[start:start + 16]])
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("lora") / "topic-lora"
    model.save_pretrained(folder)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_model_dir)
    fresh = AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=3, id2label=dict(enumerate(LABELS)), ignore_mismatched_sizes=True)
    reference = PeftModel.from_pretrained(fresh, folder).eval()
    with torch.no_grad():
        probs = reference(**tok(TEXTS, padding=True, return_tensors="pt")).logits.softmax(-1).numpy()
    return folder, probs


def test_peft_adapter_pulls_as_a_peft_variant_equal_to_peftmodel(lora_adapter, tiny_csv, store, tiny_model_dir):
    folder, want = lora_adapter
    with pytest.raises(UserError, match=r"the model's labels \{LABEL_0, LABEL_1, LABEL_2\} do not match"):
        pull_model(store, str(folder), data=str(tiny_csv))   # no config.json beside it, the base's head has 2
    variant = pull_model(store, str(folder), data=str(tiny_csv),
                         label_map={f"LABEL_{i}": label for i, label in enumerate(LABELS)})
    record = store.get_variant(variant)
    assert record.peft_method == "lora" and record.has_adapter and record.has_merged and record.kind == "external"
    assert record.labels == LABELS and record.base_model == str(tiny_model_dir)
    assert (store.variant_path(variant) / "adapter" / "adapter_config.json").is_file()
    np.testing.assert_allclose(_probs(store, variant), want, atol=1e-5)
    # the stored adapter alone (no merged copy) loads onto its base through the task's loader
    record.has_merged = False
    from tasks.text_classification.predict import TorchPredictor, load_model

    model, tok = load_model(store, record)
    np.testing.assert_allclose(TorchPredictor(model, tok, LABELS).predict_proba(TEXTS), want, atol=1e-5)


# -- the Hub (tests/hub_server.py) ----------------------------------------------------------------
def _upload(hub_server, folder: Path, repo_id: str) -> list[str]:
    """Two commits of ``folder`` to ``repo_id`` (the second changes the README): their oids."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id)
    first = api.upload_folder(repo_id=repo_id, folder_path=str(folder)).oid
    (readme := folder.parent / "README.md").write_text("---\nbase_model: org/encoder\ndatasets: [bbc-news]\n---\n# m\n")
    second = api.upload_file(path_or_fileobj=str(readme), path_in_repo="README.md", repo_id=repo_id).oid
    return [first, second]


def test_hub_repo_by_id_and_revision_records_the_commit(topic_model, tiny_csv, store, hub_server, tmp_path):
    import shutil

    repo_id = f"{hub_server.user}/topic-model"
    local = tmp_path / "up" / "topic-model"
    shutil.copytree(topic_model, local)
    (local / "pytorch_model.bin").write_bytes(b"pickle, never fetched")
    first, second = _upload(hub_server, local, repo_id)
    latest = pull_model(store, repo_id, data=str(tiny_csv))
    old = pull_model(store, repo_id, revision=first, data=str(tiny_csv))
    assert latest != old
    lineage = store.get_variant(latest).train_summary["external"]
    assert lineage["repo_id"] == repo_id and lineage["commit"] == second and lineage["revision"] is None
    assert lineage["lineage"] == {"base_model": "org/encoder", "datasets": ["bbc-news"], "from": "README.md"}
    assert store.get_variant(latest).base_model == "org/encoder"
    assert store.get_variant(old).train_summary["external"]["commit"] == first
    fetched = {c.path for c in hub_server.calls if "/resolve/" in c.path}
    assert not any(path.endswith(".bin") for path in fetched) and any(p.endswith("model.safetensors") for p in fetched)
    np.testing.assert_allclose(_probs(store, latest), _probs(store, old), atol=1e-6)


def test_hub_errors_are_one_line(store, hub_server, monkeypatch, topic_model):
    from huggingface_hub import HfApi

    with pytest.raises(UserError, match=f"no model '{hub_server.user}/missing' on {hub_server.endpoint}"):
        pull_model(store, f"{hub_server.user}/missing")
    repo_id = f"{hub_server.user}/tiny"
    HfApi().create_repo(repo_id)
    HfApi().upload_folder(repo_id=repo_id, folder_path=str(topic_model))
    with pytest.raises(UserError, match=f"model '{repo_id}' on .* has no revision 'nope'"):
        pull_model(store, repo_id, revision="nope")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"is unreachable \(offline mode is on .*\); pull a local save_pretrained"):
        pull_model(store, repo_id)
    from tests.test_ui import free_port

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")   # nothing listens there
    with pytest.raises(UserError, match=r"^http://127.0.0.1:\d+ is unreachable \(.+\); pull a local save_pretrained"):
        pull_model(store, repo_id)
    assert store.list_variants() == []


def test_hub_adapter_whose_base_is_a_hub_id_pulls_both(lora_adapter, tiny_model_dir, tiny_csv, store, hub_server,
                                                        tmp_path):
    import shutil

    from huggingface_hub import HfApi

    folder, want = lora_adapter
    api, base_id, adapter_id = HfApi(), f"{hub_server.user}/tiny-base", f"{hub_server.user}/topic-lora"
    api.create_repo(base_id)
    base_commit = api.upload_folder(repo_id=base_id, folder_path=str(tiny_model_dir)).oid
    local = tmp_path / "adapter"
    shutil.copytree(folder, local)
    config = json.loads((local / "adapter_config.json").read_text())
    (local / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": base_id}))
    api.create_repo(adapter_id)
    commit = api.upload_folder(repo_id=adapter_id, folder_path=str(local)).oid
    variant = pull_model(store, adapter_id, data=str(tiny_csv),
                         label_map={f"LABEL_{i}": label for i, label in enumerate(LABELS)})
    record = store.get_variant(variant)
    external = record.train_summary["external"]
    assert record.base_model == base_id and record.peft_method == "lora" and external["commit"] == commit
    assert external["base"]["repo_id"] == base_id and external["base"]["commit"] == base_commit
    np.testing.assert_allclose(_probs(store, variant), want, atol=1e-5)


def test_a_pushed_variant_comes_back_with_its_lineage_and_is_scored(tiny_model_dir, tiny_csv, store, hub_server,
                                                                      tmp_path, capsys):
    from hub.publish import push_variant
    from tests.test_ui import add_tiny_variant

    pushed = add_tiny_variant(store, tiny_model_dir)
    repo_id = f"{hub_server.user}/tiny-topics"
    made = push_variant(store, pushed.id, repo_id=repo_id, log=lambda *a: None)
    other = Store(tmp_path / "other")
    code, out, err = _cli(capsys, "--home", str(other.root), "pull", repo_id, "--data", str(tiny_csv), "--json")
    assert code == 0, err
    record = other.get_variant(json.loads(out)["variant"])
    lineage = record.train_summary["external"]["lineage"]
    assert lineage["from"] == "evalhub.json" and lineage["id"] == pushed.id and lineage["dataset"] == "fixture"
    assert "base_model" not in lineage    # the pusher's local base went up as "<local path>": not kept
    assert (record.name, record.config_hash, record.seed, record.labels) == ("tiny-topics", "cfg0", 7, pushed.labels)
    assert record.run_config["model"]["max_length"] == 32    # truncated as the pushed variant was
    assert record.train_summary["external"]["commit"] == made["commit"] and record.kind == "external"
    np.testing.assert_allclose(_probs(other, record.id), _probs(store, pushed.id), atol=1e-6)
    assert _cli(capsys, "--home", str(other.root), "eval", record.id, "--bootstrap", "0")[0] == 0
    assert [row["variant"] for row in other.leaderboard()] == [record.id]


def test_a_pushed_lora_variant_comes_back_as_a_peft_variant(lora_adapter, tiny_model_dir, store, hub_server, tmp_path):
    """evalhub pushes a PEFT variant as its adapter at the root and merged/ beside it; its base is the
    pusher's local folder, named by its name alone, so the merged weights are what is pulled."""
    import shutil

    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from hub.publish import push_variant
    from hub.store import VariantRecord

    folder, want = lora_adapter
    with store.stage_variant("tiny-lora-0001") as tmp:
        shutil.copytree(folder, tmp / "adapter")
        base = AutoModelForSequenceClassification.from_pretrained(
            tiny_model_dir, num_labels=3, id2label=dict(enumerate(LABELS)), ignore_mismatched_sizes=True)
        PeftModel.from_pretrained(base, folder).merge_and_unload().save_pretrained(tmp / "model")
        AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(tmp / "tokenizer")
    store.add_variant(VariantRecord(
        id="tiny-lora-0001", name="tiny-lora", task="text-classification", base_model=str(tiny_model_dir),
        peft_method="lora", labels=LABELS, dataset={"source": "fixture"}, peft_config={}, hyperparameters={},
        run_config={"model": {"max_length": 32}}, config_hash="cfg1", seed=3, versions={}, has_adapter=True))
    repo_id = f"{hub_server.user}/tiny-lora"
    push_variant(store, "tiny-lora-0001", repo_id=repo_id, log=lambda *a: None)
    other = Store(tmp_path / "other")
    record = other.get_variant(pull_model(other, repo_id))
    assert (record.peft_method, record.has_adapter, record.has_merged, record.labels) == ("lora", True, True, LABELS)
    assert record.train_summary["external"]["lineage"]["id"] == "tiny-lora-0001"
    assert record.base_model == Path(tiny_model_dir).name   # the pusher's local base, by the name it went up under
    stored = other.variant_path(record.id)
    assert (stored / "adapter" / "adapter_model.safetensors").read_bytes() == (
        folder / "adapter_model.safetensors").read_bytes()
    np.testing.assert_allclose(_probs(other, record.id), want, atol=1e-5)
