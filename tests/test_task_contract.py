"""The task contract, checked over every registered task on tiny random models.

For each task: its declarations are complete, a run config with its defaults parses, it
trains a few steps, its predictor answers, its default suite scores the variant (the
headline metric among the results), every engine backend it supports that runs here
builds an fp32 engine that passes parity, and its demo widget (where it has one) loads.
A newly registered task must add its tiny case to ``CASES``: the test says so.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from hub.registries import TASKS
from tests.conftest import tiny_config
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture


def quiet(*_args, **_kwargs) -> None:
    pass


def classification_case(request, tmp_path: Path) -> dict:
    return tiny_config(request.getfixturevalue("tiny_model_dir"), request.getfixturevalue("tiny_csv"),
                       train={"max_steps": 3})


def chat_jsonl(path: Path, n: int = 40) -> Path:
    topics = ["printer", "router", "laptop", "mouse", "screen", "battery", "email", "password"]
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            thing = topics[i % len(topics)]
            fh.write(json.dumps({"messages": [
                {"role": "user", "content": f"My {thing} number {i} does not work, what do I do?"},
                {"role": "assistant", "content": f"Restart the {thing} and check cable {i % 5}."}]}) + "\n")
    return path


def generation_case(request, tmp_path: Path) -> dict:
    return {"task": "text-generation", "seed": 7,
            "model": {"name": str(request.getfixturevalue("tiny_llama_dir")), "max_length": 64},
            "data": {"source": str(chat_jsonl(tmp_path / "chat.jsonl"))},
            "peft": {"method": "lora", "options": {"r": 4, "lora_alpha": 8}},
            "train": {"learning_rate": 1e-3, "batch_size": 4, "max_steps": 3, "warmup_ratio": 0.0},
            "eval": {"bootstrap": 20, "batch_size": 8},
            "tracking": {"report_to": []}}


CASES = {"text-classification": classification_case, "text-generation": generation_case}


@pytest.mark.parametrize("task_name", TASKS.names())
def test_every_task_keeps_the_contract(task_name, request, tmp_path, monkeypatch):
    from evaluators.runner import run_suite
    from hub.engines.build import build_engine
    from hub.run_config import parse_run_config
    from hub.store import Store
    from hub.suites import available_suites, load_suite

    assert task_name in CASES, f"task {task_name} is registered but has no tiny case in tests/test_task_contract.py"
    task = TASKS.get(task_name)
    assert task.name == task_name and task.pipeline_tag and task.card_task and task.example_schema
    assert task.headline_metric and task.default_model and task.default_data
    assert task.default_suite in available_suites()
    assert {name for name, _ in load_suite(task.default_suite).steps()} <= task.evaluators
    assert task.engines.names() and {b for b, _ in task.auto_candidates} <= set(task.engines.names())

    defaults = parse_run_config({"task": task_name})   # no model, data or suite named: the task's own
    assert defaults.model.name == task.default_model and defaults.data.source == task.default_data
    assert defaults.eval.suite == task.default_suite

    monkeypatch.setenv("EVALHUB_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "home")
    cfg = parse_run_config(CASES[task_name](request, tmp_path))
    data = task.check(cfg)
    variant_id = task.train(cfg, store, data=data, show_progress=False)
    record = store.get_variant(variant_id)
    assert record.task == task_name and record.train_summary["steps"] == 3
    assert bool(record.labels) == task.has_labels

    splits = task.load_eval_splits(record, ("test",))
    inputs, references = splits["test"].inputs, splits["test"].references
    assert len(inputs) == len(references) > 0
    predictor = task.load_predictor(store, record)
    assert predictor.engine == "torch-fp32"

    run_id = run_suite(store, variant_id, bootstrap=20, log=quiet, progress=False)   # no suite: the task's own
    assert [run["suite"] for run in store.runs(variant_id) if run["id"] == run_id] == [task.default_suite]
    metrics = {m["metric"] for m in store.metrics(run_id)}
    assert task.headline_metric in metrics

    for backend_name in task.engines.names():
        backend = task.engines.get(backend_name)()
        if not (backend.is_available() and backend.runs_here()) or "fp32" not in backend.precisions:
            continue
        engine_id = build_engine(store, variant_id, backend_name, "fp32", log=quiet, budget_s=0.05)
        engine = store.get_engine(engine_id)
        assert engine.parity["passed"], (backend_name, engine.parity)
        assert engine.latency.get("cells"), backend_name

    if task.demo_tab:
        module, attr = task.demo_tab.split(":")
        assert callable(getattr(importlib.import_module(module), attr))
