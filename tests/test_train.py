"""The text-classification training loop on a tiny random BERT."""

from __future__ import annotations

import pytest
import torch

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
