"""Build options of text-generation engines: checked before any work, and read by parity."""

from __future__ import annotations

import pytest

from hub.errors import UserError
from hub.store import Store
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_task_contract import chat_jsonl


def quiet(*_args, **_kwargs) -> None:
    pass


@pytest.fixture(scope="module")
def full_variant(tiny_llama_dir, tmp_path_factory):
    from hub.registries import TASKS
    from hub.run_config import parse_run_config

    root = tmp_path_factory.mktemp("gen-options")
    store = Store(root / "home")
    cfg = parse_run_config({"task": "text-generation", "seed": 1,
                            "model": {"name": str(tiny_llama_dir), "max_length": 64},
                            "data": {"source": str(chat_jsonl(root / "chat.jsonl"))}, "peft": {"method": "none"},
                            "train": {"max_steps": 1, "batch_size": 4}, "tracking": {"report_to": []}})
    task = TASKS.get("text-generation")
    return store, task.train(cfg, store, data=task.check(cfg), show_progress=False)


@pytest.mark.parametrize("options, says", [
    ({"rouge_bound": "2"}, "rouge_bound=2: expected a ROUGE-L drop from 0 to 1"),
    ({"rouge_bound": "a lot"}, "rouge_bound=a lot"),
    ({"parity_prompts": "0"}, "parity_prompts=0: expected a whole number"),
    ({"parity_prompts": "2.5"}, "parity_prompts=2.5"),
    ({"rouge_bond": "0.1"}, "did you mean 'rouge_bound'"),
])
def test_bad_options_are_one_sentence_and_store_nothing(full_variant, options, says):
    from hub.engines.build import build_engine

    store, variant = full_variant
    with pytest.raises(UserError, match=says):
        build_engine(store, variant, "torch", "fp32", options=options, log=quiet, budget_s=0.05)
    assert store.list_engines(variant) == []


def test_rouge_bound_and_parity_prompts_reach_the_report(full_variant):
    from hub.engines.build import build_engine

    store, variant = full_variant
    engine = build_engine(store, variant, "torch", "fp32", options={"rouge_bound": "0.25", "parity_prompts": "3"},
                          log=quiet, budget_s=0.05)
    parity = store.get_engine(engine).parity
    assert parity["rouge_bound"] == 0.25 and parity["n"] == 3 and parity["passed"]
