"""The text-classification training loop on a tiny random BERT."""

from __future__ import annotations

import pytest
import torch

from hub.errors import UserError
from hub.run_config import parse_run_config
from tests.conftest import tiny_config


def train(store, cfg_dict, **kw):
    from tasks.text_classification.train import train as run

    return run(parse_run_config(cfg_dict), store, show_progress=False, **kw)


def test_full_finetune_stores_a_variant_with_lineage(store, tiny_model_dir, tiny_csv):
    vid = train(store, tiny_config(tiny_model_dir, tiny_csv, train={"eval_every": 6}))
    record = store.get_variant(vid)
    assert record.peft_method == "none" and record.has_merged and not record.has_adapter
    assert record.labels == ["money", "music", "sport"]
    assert set(record.dataset["hashes"]) == {"train", "validation", "test"}
    assert record.train_summary["steps"] == 12
    assert [h["step"] for h in record.train_summary["history"]] == [6, 12]
    assert record.versions["torch"].startswith("2.13")
    folder = store.variant_path(vid)
    assert (folder / "model" / "model.safetensors").is_file()
    assert (folder / "variant.json").is_file()
    assert not any(store.staging_dir.iterdir()), "staging must be empty after a successful save"
    from hub.report import describe_variant

    best_step = record.train_summary["best_step"]          # no early stopping: the last step's weights are kept
    assert f"at step {best_step}; weights stored from step 12" in describe_variant(record, [], {})


def _validation_loss(store, record, data_source):
    """Cross-entropy of a reloaded variant on the validation split, via the predictor."""
    from hub.config import from_dict
    from hub.data import load_data
    from hub.run_config import DataConfig
    from tasks.text_classification.predict import load_predictor

    data = load_data(from_dict(DataConfig, record.run_config["data"], "data"), labels=record.labels)
    split = data.splits["validation"]
    probs = load_predictor(store, record).predict_proba(list(split["text"]))
    refs = torch.tensor(list(split["label"]))
    return torch.nn.functional.nll_loss(torch.log(torch.from_numpy(probs)), refs).item()


@pytest.mark.parametrize("method, options, lr", [
    ("lora", {"r": 4, "lora_alpha": 8}, 5e-3),
    ("adalora", {"init_r": 6, "target_r": 4}, 5e-3),
    ("ia3", {}, 5e-3),
    ("prompt_tuning", {"num_virtual_tokens": 4}, 3e-2),
])
def test_every_peft_method_trains_saves_and_reloads_identically(store, tiny_model_dir, tiny_csv,
                                                                method, options, lr):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from hub.models import load_classifier

    cfg = tiny_config(tiny_model_dir, tiny_csv, peft={"method": method, "options": options},
                      train={"learning_rate": lr, "max_steps": 8})
    record = store.get_variant(train(store, cfg))
    folder = store.variant_path(record.id)
    summary = record.train_summary
    assert record.has_adapter and (folder / "adapter" / "adapter_config.json").is_file()
    assert 0 < summary["trainable_parameters"]["fraction"] < 1
    # The reloaded variant scores the validation split exactly as the trained model did in memory.
    in_memory = summary["history"][-1]["loss"]
    assert _validation_loss(store, record, tiny_csv) == pytest.approx(in_memory, abs=1e-4)
    if method == "prompt_tuning":
        assert not record.has_merged and not (folder / "model").exists()
        return
    # Merged weights and base + adapter give the same logits.
    enc = {"input_ids": torch.tensor([[2, 10, 11, 12, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    merged = AutoModelForSequenceClassification.from_pretrained(folder / "model").eval()
    adapted = PeftModel.from_pretrained(load_classifier(str(tiny_model_dir), record.labels),
                                        folder / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(**enc).logits, adapted(**enc).logits, atol=1e-5, rtol=1e-4)


def _weights(store, vid):
    from safetensors.torch import load_file

    return load_file(store.variant_path(vid) / "model" / "model.safetensors")


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, tiny_model_dir, tiny_csv):
    from hub.store import Store

    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 10, "checkpoint_every": 3})

    class Interrupt(Exception):
        pass

    def stop_at_7(step, logs):
        if step == 7:
            raise Interrupt

    straight = Store(tmp_path / "a")
    reference = _weights(straight, train(straight, cfg))
    resumed_store = Store(tmp_path / "b")
    with pytest.raises(Interrupt):
        train(resumed_store, cfg, on_step=stop_at_7)
    assert resumed_store.list_variants() == [], "an interrupted run stores no variant"
    checkpoints = sorted(p.name for p in (resumed_store.work_dir(parse_run_config(cfg).hash()) / "checkpoints").iterdir())
    assert checkpoints == ["step-0000003", "step-0000006"]
    resumed = _weights(resumed_store, train(resumed_store, cfg, resume=True))
    assert reference.keys() == resumed.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], atol=0, rtol=0, msg=name)
    work = resumed_store.work_dir(parse_run_config(cfg).hash())
    assert not (work / "checkpoints").exists(), "a stored run leaves no checkpoint to resume a second time"


def test_resume_refuses_a_checkpoint_of_other_data(tmp_path, tiny_model_dir):
    from hub.store import Store
    from tests.conftest import make_texts, write_csv

    data = write_csv(tmp_path / "moving.csv", make_texts(240))
    cfg = tiny_config(tiny_model_dir, data, train={"max_steps": 6, "checkpoint_every": 2})
    store = Store(tmp_path / "home")

    class Interrupt(Exception):
        pass

    def stop_at_3(step, logs):
        if step == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(store, cfg, on_step=stop_at_3)
    write_csv(data, make_texts(240, seed=99))           # same path and config, other rows
    with pytest.raises(UserError, match=r"--resume: the data changed since step-0000002 was saved; train without"):
        train(store, cfg, resume=True)
    assert store.list_variants() == []


def test_early_stopping_restores_the_best_evaluation(store, tiny_model_dir, tiny_csv):
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={
        "learning_rate": 0.5, "max_steps": 40, "eval_every": 2, "early_stopping_patience": 2,
        "metric_for_best": "loss"})  # a wild learning rate makes validation loss climb quickly
    record = store.get_variant(train(store, cfg))
    history = record.train_summary["history"]
    assert record.train_summary["steps"] < 40
    best = min(h["loss"] for h in history)
    assert record.train_summary["best_validation"] == pytest.approx(best)
    assert _validation_loss(store, record, tiny_csv) == pytest.approx(best, abs=1e-4)
    from hub.report import describe_variant

    best_step = record.train_summary["best_step"]
    assert f"best validation loss {best:.4f} at step {best_step}; weights stored from step {best_step}" in \
        describe_variant(record, [], {})


def test_adafactor_cosine_and_accumulation_train(store, tiny_model_dir, tiny_csv):
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={
        "optimizer": "adafactor", "scheduler": "cosine", "gradient_accumulation_steps": 2, "max_steps": 4})
    record = store.get_variant(train(store, cfg))
    assert record.train_summary["steps"] == 4
    assert record.hyperparameters["optimizer"] == "adafactor"


def test_relative_paths_are_stored_absolute(store, tiny_model_dir, tiny_csv, monkeypatch, tmp_path):
    """A variant trained on ./data.csv is evaluated later from any folder."""
    import os

    from evaluators.runner import load_eval_split

    monkeypatch.chdir(tiny_csv.parent)
    cfg = tiny_config(os.path.relpath(tiny_model_dir), tiny_csv.name, train={"max_steps": 2})
    record = store.get_variant(train(store, cfg))
    assert record.run_config["data"]["source"] == str(tiny_csv.resolve())
    assert record.run_config["model"]["name"] == str(tiny_model_dir.resolve())
    assert record.config_hash == parse_run_config(cfg).hash()        # the hash is of the config as written
    monkeypatch.chdir(tmp_path)
    texts, _, _, _ = load_eval_split(record, "test")
    assert texts


def test_loop_position_counts_the_short_step_that_ends_each_epoch():
    from tasks.text_classification.train import loop_position

    # 11 micro-batches, 4 per step: steps of 4, 4 and 3 batches, so 3 steps an epoch
    assert [loop_position(step, 11, 4) for step in range(7)] == [
        (0, 0), (0, 4), (0, 8), (1, 0), (1, 4), (1, 8), (2, 0)]
    assert [loop_position(step, 10, 1) for step in (0, 9, 10, 25)] == [(0, 0), (0, 9), (1, 0), (2, 5)]


def test_accumulation_that_does_not_divide_an_epoch_skips_no_batch(store, tiny_model_dir, tiny_csv, monkeypatch):
    """A fresh run starts every epoch at its first batch (the old arithmetic skipped more each epoch)."""
    from accelerate import Accelerator

    skips = []
    original = Accelerator.skip_first_batches
    monkeypatch.setattr(Accelerator, "skip_first_batches",
                        lambda self, dl, n: skips.append(n) or original(self, dl, n))
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"gradient_accumulation_steps": 7, "epochs": 3,
                                                       "max_steps": None, "eval_every": 0})
    record = store.get_variant(train(store, cfg))
    assert skips == [] and record.train_summary["steps"] >= 3


def test_dropout_is_on_while_training(store, tiny_model_dir, tiny_csv, monkeypatch):
    """from_pretrained returns eval mode; the loop must switch to train mode before step 1."""
    import tasks.text_classification.train as loop

    seen, modes = {}, []
    original = loop.load_classifier

    def load(*args, **kwargs):
        seen["model"] = original(*args, **kwargs)
        return seen["model"]

    monkeypatch.setattr(loop, "load_classifier", load)
    train(store, tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 3}),
          on_step=lambda step, logs: modes.append(seen["model"].training))
    assert modes == [True, True, True]
