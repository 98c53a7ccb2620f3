"""Training the text-generation task on the tiny chat LM: steps, the loss on the assistant's
tokens only, and an interrupted run resumed bit for bit."""

from __future__ import annotations

import pytest
import torch

from hub.run_config import parse_run_config
from hub.store import Store
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_task_contract import chat_jsonl


def config(model_dir, data, **train) -> dict:
    return {"task": "text-generation", "seed": 5, "model": {"name": str(model_dir), "max_length": 64},
            "data": {"source": str(data)}, "peft": {"method": "lora", "options": {"r": 4, "lora_alpha": 8}},
            "train": {"learning_rate": 1e-3, "batch_size": 4, "warmup_ratio": 0.0, **train},
            "tracking": {"report_to": []}}


def train(store, cfg_dict, **kw):
    from tasks.text_generation.train import train as run

    return run(parse_run_config(cfg_dict), store, show_progress=False, **kw)


def _adapter(store, vid):
    from safetensors.torch import load_file

    return load_file(store.variant_path(vid) / "adapter" / "adapter_model.safetensors")


def test_training_lowers_the_assistant_loss_and_stores_lineage(tmp_path, tiny_llama_dir):
    store = Store(tmp_path / "home")
    seen: list[dict] = []
    vid = train(store, config(tiny_llama_dir, chat_jsonl(tmp_path / "chat.jsonl"), max_steps=12, eval_every=6),
                on_step=lambda step, logs: seen.append(dict(logs, step=step)))
    record = store.get_variant(vid)
    assert record.task == "text-generation" and record.peft_method == "lora" and record.labels == []
    assert record.train_summary["steps"] == 12 and record.dataset["sizes"]["train"] > 0
    validation = [s["validation/loss"] for s in seen if "validation/loss" in s]   # per assistant token
    assert len(validation) == 2 and validation[-1] < validation[0]
    assert all(s["validation/perplexity"] > 1 for s in seen if "validation/perplexity" in s)


def test_the_forward_builds_no_kv_cache_while_training(tmp_path, tiny_llama_dir, monkeypatch):
    from transformers import LlamaForCausalLM

    calls: list = []
    real = LlamaForCausalLM.forward

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("use_cache"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", spy)
    train(Store(tmp_path / "home"), config(tiny_llama_dir, chat_jsonl(tmp_path / "chat.jsonl"), max_steps=2))
    assert calls and calls[0] is False     # the first forward is a training step


def test_interrupted_run_resumes_to_the_same_adapter(tmp_path, tiny_llama_dir):
    cfg = config(tiny_llama_dir, chat_jsonl(tmp_path / "chat.jsonl"), max_steps=8, checkpoint_every=3)

    class Interrupt(Exception):
        pass

    def stop_at_5(step, logs):
        if step == 5:
            raise Interrupt

    straight = Store(tmp_path / "a")
    reference = _adapter(straight, train(straight, cfg))
    resumed_store = Store(tmp_path / "b")
    with pytest.raises(Interrupt):
        train(resumed_store, cfg, on_step=stop_at_5)
    assert resumed_store.list_variants() == [], "an interrupted run stores no variant"
    resumed = _adapter(resumed_store, train(resumed_store, cfg, resume=True))
    assert reference.keys() == resumed.keys() and reference
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], atol=0, rtol=0, msg=name)
