"""The text-generation flow a user runs, through the CLI on the tiny chat model: train (the
generation suite after it), show, eval with the task's own suite, build-engine (onnxruntime int4
and torch fp32), eval --engine best, leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_gen_bad_input import evalhub, gen_config
from tests.test_task_contract import chat_jsonl


def run_json(*args: str, home: Path) -> dict | list:
    result = evalhub("--json", *args, home=home)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1] if args[0] != "leaderboard" else result.stdout)


def test_the_recipe_flow_on_the_tiny_model(tiny_llama_dir, tmp_path):
    pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed")
    home = tmp_path / "home"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(gen_config(tiny_llama_dir, chat_jsonl(tmp_path / "chat.jsonl"))))
    variant = run_json("train", str(config), home=home)["variant"]

    shown = evalhub("show", variant, home=home)
    assert shown.returncode == 0 and "generation on test" in shown.stdout and "labels" not in shown.stdout

    run = run_json("eval", variant, "--bootstrap", "10", home=home)["run"]   # no --suite: the task's own
    assert run in evalhub("show", variant, home=home).stdout

    int4 = run_json("build-engine", variant, "--backend", "onnxruntime", "--precision", "int4", home=home)["engine"]
    fp32 = run_json("build-engine", variant, "--backend", "torch", "--precision", "fp32", home=home)["engine"]
    rows = {row["engine"]: row for row in run_json("leaderboard", home=home)}
    for engine in (int4, fp32):      # a build scores parity and speed on a sample, not the split's ROUGE-L
        assert {"token_agreement", "rougeL_delta", "tokens_per_s_b1", "ttft_ms_b1"} <= set(rows[engine])
        assert "rougeL" not in rows[engine]
    assert rows["torch-fp32"]["rougeL"] >= 0

    run_json("eval", variant, "--engine", "best", "--bootstrap", "10", home=home)   # the torch fp32 engine passed
    rows = {row["engine"]: row for row in run_json("leaderboard", home=home)}
    assert "rougeL" in rows[fp32] and "tokens_per_s_b1" in rows[fp32]
    table = evalhub("leaderboard", home=home)
    assert table.returncode == 0 and {"rougeL", "token_agreement", "tokens_per_s_b1"} <= set(table.stdout.split())
    shown = evalhub("show", variant, home=home).stdout
    assert f"engine {int4}  onnxruntime int4  parity: first 32 tokens equal" in shown and "nan" not in shown
