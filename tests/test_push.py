"""`evalhub push` and `push-space` against the in-process Hub-API server (tests/hub_server.py),
with the unmodified HfApi: what lands on the Hub is downloaded back and compared with the store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from hub.results import MetricResult
from hub.errors import UserError
from hub.hub_files import NAME_KEYS
from hub.publish import push_space, push_variant
from hub.run_config import parse_run_config
from hub.store import RunRecord, Store
from tests.conftest import tiny_config
from tests.test_ui import add_tiny_variant

TEXTS = ["the band played a new song on tour", "bank shares and market price", "the coach and the team won",
         "a big week for the league"]


def _train(store: Store, cfg: dict) -> str:
    from tasks.text_classification.train import train

    return train(parse_run_config(cfg), store, show_progress=False)


@pytest.fixture(scope="module")
def published(tiny_model_dir, tiny_csv, tmp_path_factory):
    """A store with a full fine-tune (one evaluation run, one onnxruntime engine) and a LoRA variant
    (no results)."""
    from hub.engines.build import build_engine

    store = Store(tmp_path_factory.mktemp("push") / "home")
    full = _train(store, tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 4}))
    run = RunRecord(variant_id=full, engine="torch-fp32", suite="default", dataset=str(tiny_csv), split="test",
                    data_hash="h0", config_hash="cfg0", seed=7, versions={}, n_examples=30, duration_s=0.1)
    store.add_run(run, [MetricResult("accuracy", 0.8333333, 0.7, 0.95),
                        MetricResult("ece", 0.1234567, higher_is_better=False)], [])
    engine = build_engine(store, full, "onnxruntime", "fp32", log=lambda *a: None, budget_s=0.05)
    lora = _train(store, tiny_config(tiny_model_dir, tiny_csv, peft={"method": "lora", "options": {"r": 4}},
                                     train={"max_steps": 4}))
    return store, full, engine, lora


def _download(repo_id: str, dest: Path, revision: str | None = None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, revision=revision, local_dir=dest))


def _same_as_store(made: dict, folder: Path, sources: dict[str, Path]) -> None:
    """Every pushed file from the store is there byte for byte (configs: but for the local names)."""
    for path_in_repo, source in sources.items():
        got = (folder / path_in_repo).read_bytes()
        if source.suffix == ".json" and got != source.read_bytes():
            mine, theirs = json.loads(got), json.loads(source.read_bytes())
            changed = {k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k)}
            assert changed and changed <= set(NAME_KEYS), (path_in_repo, changed)
            assert not any(str(mine[k]).startswith("/") for k in changed)
        else:
            assert got == source.read_bytes(), path_in_repo
    assert set(made["files"]) >= set(sources)


def _torch_logits(model_dir: Path, labels: list[str], tokenizer: Path | None = None) -> np.ndarray:
    """Logits of a downloaded model folder, through the store's own torch predictor."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tasks.text_classification.predict import TorchPredictor

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tokenizer or model_dir)
    return TorchPredictor(model, tok, labels, max_length=32).logits(TEXTS)


def test_push_downloads_back_identical_with_card_results_and_engine(published, hub_server, tmp_path):
    from transformers import AutoTokenizer

    from hub.report import describe_variant
    from tasks.text_classification.predict import load_predictor

    store, full, engine_id, _ = published
    repo = f"{hub_server.user}/tiny-topics"
    made = push_variant(store, full, repo_id=repo, engines=[engine_id], log=lambda *a: None)
    assert made["commit"] and made["pr_url"] is None and made["revision"] == "main"
    assert made["commit"] == hub_server.repo(repo).resolve("main").oid
    assert hub_server.commits(repo)[-1].message == f"evalhub: variant {full} with engines {engine_id}"
    folder = _download(repo, tmp_path / "dl")

    variant_dir, engine_dir = store.variant_path(full), store.engine_path(full, engine_id)
    sources = {p.relative_to(d).as_posix(): p for d in (variant_dir / "model", variant_dir / "tokenizer")
               for p in d.rglob("*") if p.is_file()}
    sources.update({f"engines/onnxruntime-fp32/{p.relative_to(engine_dir).as_posix()}": p
                    for p in engine_dir.rglob("*") if p.is_file()})
    _same_as_store(made, folder, sources)
    for name in ("engine.json", "parity.json", "latency.json"):
        assert (folder / "engines/onnxruntime-fp32" / name).is_file()

    # The downloaded model gives the store's logits exactly.
    record = store.get_variant(full)
    np.testing.assert_array_equal(_torch_logits(folder, record.labels), load_predictor(store, record).logits(TEXTS))
    assert AutoTokenizer.from_pretrained(folder)("a sentence")["input_ids"]

    lineage = (folder / "evalhub.json").read_text()   # what `evalhub pull` reads back
    assert json.loads(lineage)["variant"]["config_hash"] == record.config_hash
    assert str(store.root.parent.parent) not in lineage, "no local path goes up"
    _card_holds_the_results(store, full, folder)
    _engine_matches(store, record, engine_id, folder)

    # The store recorded the push; `evalhub show` lists it; no file holds the token.
    pushes = store.pushes(full)
    assert [(p["repo_id"], p["revision"], p["commit_oid"]) for p in pushes] == [(repo, "main", made["commit"])]
    assert f"pushed to {repo}@main" in describe_variant(record, [], {}, pushes=pushes)
    for path in folder.rglob("*"):
        if path.is_file():
            assert hub_server.token.encode() not in path.read_bytes()


def _card_holds_the_results(store: Store, full: str, folder: Path) -> None:
    """The card's model-index and .eval_results/evalhub.yaml hold the database's values."""
    from huggingface_hub import ModelCard, parse_eval_result_entries

    stored = {m["metric"]: m["value"] for run in store.runs(full) if run["suite"] == "default"
              for m in store.metrics(run["id"])}
    card = ModelCard.load(folder / "README.md")
    index = {r.metric_type: r.metric_value for r in card.data.eval_results
             if r.metric_config == "engine=torch-fp32"}
    assert index == pytest.approx(stored, abs=1e-6) and set(index) == {"accuracy", "ece"}
    entries = parse_eval_result_entries(yaml.safe_load((folder / ".eval_results/evalhub.yaml").read_text()))
    torch_entries = {e.task_id: e.value for e in entries if "engine=torch-fp32" in e.notes}
    assert torch_entries == pytest.approx(stored, abs=1e-6)
    assert "ci95=[0.7, 0.95]" in next(e.notes for e in entries if e.task_id == "accuracy" and "torch-fp32" in e.notes)
    text = (folder / "README.md").read_text()
    assert "engines/onnxruntime-fp32/" in text and str(store.root.parent.parent) not in text   # no local path


def _engine_matches(store: Store, record, engine_id: str, folder: Path) -> None:
    """The pushed engine loads from the downloaded folder and answers as the stored engine does."""
    from transformers import AutoTokenizer

    from hub.engines.base import EngineRecord
    from hub.engines.build import backend_for, load_engine_predictor
    from hub.engines.reports import AGREEMENT_MIN
    from tasks.text_classification.predict import load_predictor

    root = folder / "engines/onnxruntime-fp32"
    engine = EngineRecord(**json.loads((root / "engine.json").read_text()))
    predictor = backend_for(engine.backend).load(root, engine, AutoTokenizer.from_pretrained(root / "tokenizer"),
                                                 record.labels)
    downloaded = predictor.logits(TEXTS)
    np.testing.assert_allclose(downloaded, load_engine_predictor(store, store.get_engine(engine_id)).logits(TEXTS),
                               atol=1e-6)
    reference = load_predictor(store, record).logits(TEXTS)
    assert (downloaded.argmax(1) == reference.argmax(1)).mean() >= AGREEMENT_MIN
    assert np.abs(downloaded - reference).max() <= max(engine.parity["max_abs_logit_diff"] * 10, 1e-4)


def test_a_second_push_makes_no_commit(published, hub_server):
    store, full, _, _ = published
    repo = f"{hub_server.org}/again"
    lines: list[str] = []
    first = push_variant(store, full, repo_id=repo, log=lines.append)
    history = [c.oid for c in hub_server.commits(repo)]
    uploads = len(hub_server.routes("lfs_upload"))
    assert uploads, "the first push uploaded the weights through the LFS API"
    second = push_variant(store, full, repo_id=repo, log=lines.append)
    assert len(hub_server.routes("lfs_upload")) == uploads, "the second push uploads nothing"
    assert first["commit"] and second["commit"] is None and second["files"] == first["files"]
    assert len(hub_server.routes("commit")) == 1 and [c.oid for c in hub_server.commits(repo)] == history
    assert hub_server.routes("preupload"), "the second push asked the Hub what it holds"
    assert any("nothing changed" in line for line in lines)
    assert len([p for p in store.pushes(full) if p["repo_id"] == repo]) == 1


def test_branch_push_and_pull_request(published, hub_server):
    store, full, _, _ = published
    repo = f"{hub_server.user}/branched"
    made = push_variant(store, full, repo_id=repo, revision="dev", log=lambda *a: None)
    assert made["revision"] == "dev" and made["url"].endswith("/tree/dev")
    assert "dev" in hub_server.repo(repo).branches and hub_server.routes("branch")
    assert "model.safetensors" in hub_server.files(repo, revision="dev")
    assert "model.safetensors" not in hub_server.files(repo, revision="main")

    card_only = push_variant(store, full, repo_id=repo, weights=False, log=lambda *a: None)
    assert "model.safetensors" not in card_only["files"] and card_only["commit"]
    pr = push_variant(store, full, repo_id=repo, create_pr=True, commit_message="weights, please review",
                      log=lambda *a: None)
    assert pr["pr_url"] and pr["commit"] and len(hub_server.repo(repo).prs) == 1
    commit_calls = hub_server.routes("commit")
    assert commit_calls[-1].query.get("create_pr") == ["1"]
    assert "model.safetensors" not in hub_server.files(repo, revision="main"), "a PR leaves main as it was"


def test_lora_variant_adapter_at_the_root_loads_onto_its_base(published, hub_server, tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel

    from hub.models import load_classifier
    from tasks.text_classification.predict import load_predictor

    store, _, _, lora = published
    record = store.get_variant(lora)
    repo = f"{hub_server.user}/tiny-lora"
    lines: list[str] = []
    made = push_variant(store, lora, repo_id=repo, log=lines.append)
    assert any("no evaluation results" in line for line in lines)
    folder = _download(repo, tmp_path / "dl")
    assert {"adapter_config.json", "adapter_model.safetensors", "merged/model.safetensors"} <= set(made["files"])
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == Path(tiny_model_dir).name   # a local base by its name only

    enc = {"input_ids": torch.tensor([[2, 10, 11, 12, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    def adapted(path):
        model = PeftModel.from_pretrained(load_classifier(str(tiny_model_dir), record.labels), path).eval()
        with torch.no_grad():
            return model(**enc).logits
    torch.testing.assert_close(adapted(folder), adapted(store.variant_path(lora) / "adapter"), atol=0, rtol=0)
    # merged/ loads with transformers alone and is what the store's predictor serves
    logits = _torch_logits(folder / "merged", record.labels, tokenizer=folder)
    np.testing.assert_array_equal(logits, load_predictor(store, record).logits(TEXTS))


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from hub.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_errors_are_one_line_without_the_token(published, hub_server, monkeypatch, capsys):
    store, full, engine_id, lora = published
    home = str(store.root)
    cases = [(hub_server.bad_token, f"{hub_server.user}/x", "rejected the token (401)"),
             (hub_server.read_token, f"{hub_server.user}/x", "no write access"),
             (hub_server.token, "not//a/repo", "is not a Hub repo id")]
    for token, repo, expected in cases:
        monkeypatch.setenv("HF_TOKEN", token)
        code, _, err = _cli(capsys, "push", full, "--repo-id", repo, "--home", home)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
        assert token not in err
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    code, _, err = _cli(capsys, "push", lora, "--repo-id", f"{hub_server.user}/x", "--engine", engine_id,
                        "--home", home)
    assert code == 2 and f"is an engine of {full}" in err
    monkeypatch.delenv("HF_TOKEN")
    code, _, err = _cli(capsys, "push", full, "--repo-id", f"{hub_server.user}/x", "--home", home)
    assert code == 2 and "no Hugging Face token" in err
    assert not hub_server.routes("commit") and not [p for p in store.pushes(full) if p["repo_id"].endswith("/x")]


def test_cli_push_prints_the_url_and_commit(published, hub_server, capsys):
    store, full, _, _ = published
    code, out, err = _cli(capsys, "push", full, "--repo-id", f"{hub_server.user}/by-cli", "--home", str(store.root),
                          "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["commit"] == hub_server.repo(f"{hub_server.user}/by-cli").resolve("main").oid
    assert hub_server.token not in out + err


def test_a_dropped_connection_records_nothing_and_the_next_push_completes(published, hub_server):
    store, full, _, _ = published
    repo = f"{hub_server.user}/dropped"
    hub_server.drop_next_commit()
    with pytest.raises(UserError, match="dropped during the upload.*run the same push again"):
        push_variant(store, full, repo_id=repo, log=lambda *a: None)
    assert not [p for p in store.pushes(full) if p["repo_id"] == repo]
    assert "model.safetensors" not in hub_server.files(repo)
    made = push_variant(store, full, repo_id=repo, log=lambda *a: None)
    assert made["commit"] and set(made["files"]) <= set(hub_server.files(repo))
    assert [p["commit_oid"] for p in store.pushes(full) if p["repo_id"] == repo] == [made["commit"]]


def test_offline_mode_and_an_unreachable_hub_are_one_line_each(store, tiny_model_dir, monkeypatch):
    from huggingface_hub import constants

    from tests.test_ui import free_port

    record = add_tiny_variant(store, tiny_model_dir)
    token = "hf_" + "q" * 34
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set") as offline:
        push_variant(store, record.id, repo_id="someone/x", weights=False, log=lambda *a: None)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")   # nothing listens there
    with pytest.raises(UserError, match="connection to http://127.0.0.1:.* dropped.*nothing was recorded") as down:
        push_variant(store, record.id, repo_id="someone/x", weights=False, log=lambda *a: None)
    assert token not in str(offline.value) + str(down.value) and store.pushes(record.id) == []

def test_removing_a_variant_removes_its_pushes(store, tiny_model_dir, hub_server):
    record = add_tiny_variant(store, tiny_model_dir)
    push_variant(store, record.id, repo_id=f"{hub_server.user}/gone", weights=False, log=lambda *a: None)
    assert len(store.pushes(record.id)) == 1
    assert store.remove_variant(record)["pushes"] == 1
    assert store.pushes(record.id) == []


def test_push_space_uploads_an_exported_space_and_refuses_other_folders(store, tiny_model_dir, hub_server, tmp_path):
    from hub.space_export import export_space

    record = add_tiny_variant(store, tiny_model_dir)
    out = tmp_path / "space"
    export_space(store, out, variants=[record.id])
    repo = f"{hub_server.user}/topic-space"
    made = push_space(out, repo_id=repo)
    files = hub_server.files(repo, repo_type="space")
    assert made["commit"] == hub_server.repo(repo, repo_type="space").resolve("main").oid
    assert files["app.py"] == (out / "app.py").read_bytes() and "README.md" in files
    assert push_space(out, repo_id=repo)["commit"] is None   # unchanged: no second commit
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "app.py").write_text("print('hi')\n")
    (plain / "README.md").write_text("---\nsdk: docker\n---\n")
    with pytest.raises(UserError, match="not 'gradio'"):
        push_space(plain, repo_id=repo)
    with pytest.raises(UserError, match="not a Space folder"):
        push_space(tmp_path, repo_id=repo)


@pytest.mark.skipif(not (os.environ.get("EVALHUB_HUB_TEST_TOKEN") and os.environ.get("EVALHUB_HUB_TEST_ENDPOINT")),
                    reason="set EVALHUB_HUB_TEST_TOKEN and EVALHUB_HUB_TEST_ENDPOINT to push to a real Hub")
def test_push_to_a_real_hub(store, tiny_model_dir, monkeypatch):
    """Opt-in: a card-only push of a tiny variant to a real Hub, into a private repo of the token's user."""
    from huggingface_hub import HfApi, constants

    endpoint, token = os.environ["EVALHUB_HUB_TEST_ENDPOINT"], os.environ["EVALHUB_HUB_TEST_TOKEN"]
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    user = HfApi(endpoint=endpoint, token=token).whoami()["name"]
    record = add_tiny_variant(store, tiny_model_dir)
    repo = f"{user}/evalhub-push-test"
    made = push_variant(store, record.id, repo_id=repo, private=True, weights=False, log=lambda *a: None)
    assert made["files"][0] == "README.md" and store.pushes(record.id)
