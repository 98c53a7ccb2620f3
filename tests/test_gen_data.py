"""Chat data for text-generation (readers, splits, bad input) and its encoding (assistant-only labels)."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest

from hub.config import from_dict
from hub.errors import UserError
from tasks.text_generation.data import GenDataConfig, load_chat_data
from tasks.text_generation.encode import IGNORE, encode_chat, make_collator, pack
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture


def _prompts(rows):
    return {json.dumps(r["messages"][:-1]) for r in rows}


def _chat(i, answer=None):
    return {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Problem {i}?"},
                         {"role": "assistant", "content": answer if answer is not None else f"Fix {i}."}]}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --------------------------------------------------------------------------- readers

def test_support_chat_is_split_disjoint_and_deterministic():
    data = load_chat_data(GenDataConfig())
    sizes = {role: len(rows) for role, rows in data.splits.items()}
    assert list(sizes) == ["train", "validation", "test"] and sum(sizes.values()) >= 900
    assert abs(sizes["test"] / sum(sizes.values()) - 0.2) < 0.01
    prompts = {role: _prompts(rows) for role, rows in data.splits.items()}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["validation"]
    assert not prompts["validation"] & prompts["test"]
    assert all(r["messages"][-1]["role"] == "assistant" for rows in data.splits.values() for r in rows)
    assert any("printer" in r["messages"][0]["content"] for rows in data.splits.values() for r in rows)
    assert load_chat_data(GenDataConfig()).hashes == data.hashes
    assert load_chat_data(GenDataConfig(split_seed=7)).hashes["test"] != data.hashes["test"]
    assert data.source == "support-chat" and any("repeated prompt" in w for w in data.warnings)


def test_chat_jsonl_with_system_prompt(tmp_path):
    rows = [_chat(i) for i in range(20)] + [{"messages": [{"role": "user", "content": "Hi"},
                                                           {"role": "assistant", "content": "Hello."}]}]
    data = load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "chat.jsonl", rows), system_prompt="Be kind."))
    assert sum(len(v) for v in data.splits.values()) == 21
    every = [r["messages"] for v in data.splits.values() for r in v]
    assert all(m[0]["role"] == "system" for m in every)
    assert {"role": "system", "content": "Be kind."} in [m[0] for m in every]           # added where missing
    assert {"role": "system", "content": "Be brief."} in [m[0] for m in every]          # kept where present


def test_prompt_response_csv_and_jsonl_with_column_mapping(tmp_path):
    frame = pd.DataFrame({"question": [f"q{i}" for i in range(30)], "answer": [f"a{i}" for i in range(30)]})
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    cfg = GenDataConfig(source=str(tmp_path / "pairs.csv"), prompt_column="question", response_column="answer")
    data = load_chat_data(cfg)
    assert {len(v) for v in data.splits.values()} == {21, 3, 6}
    example = data.splits["train"][0]["messages"]
    assert [m["role"] for m in example] == ["user", "assistant"] and example[1]["content"].startswith("a")
    frame.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    again = load_chat_data(GenDataConfig(**{**cfg.__dict__, "source": str(tmp_path / "pairs.jsonl")}))
    assert again.hashes == data.hashes


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    import datasets

    rows = [_chat(i) for i in range(40)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    data = load_chat_data(GenDataConfig(source=str(tmp_path / "ds")))
    assert {len(v) for v in data.splits.values()} == {28, 4, 8}
    assert data.splits["train"][0]["messages"][0] == {"role": "system", "content": "Be brief."}
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:30]),
                          "test": datasets.Dataset.from_list(rows[30:])}).save_to_disk(str(tmp_path / "dd"))
    data = load_chat_data(GenDataConfig(source=str(tmp_path / "dd")))
    assert data.splits["test"] == rows[30:]                          # the source's own split, kept as is
    assert len(data.splits["validation"]) == 3 and len(data.splits["train"]) == 27   # carved from train
    with pytest.raises(UserError, match="no split 'training'"):
        load_chat_data(GenDataConfig(source=str(tmp_path / "dd"), train_split="training"))


def test_repeated_prompts_never_cross_splits(tmp_path):
    rows = [_chat(i % 12, answer=f"answer {i}") for i in range(60)]
    data = load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "rep.jsonl", rows)))
    assert sum(len(v) for v in data.splits.values()) == 12
    seen = [p for rows in data.splits.values() for p in _prompts(rows)]
    assert len(seen) == len(set(seen)) == 12
    kept = load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "rep.jsonl", rows), deduplicate=False))
    assert sum(len(v) for v in kept.splits.values()) == 60


def test_max_examples_and_config_checks(tmp_path):
    rows = [_chat(i) for i in range(100)]
    data = load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "c.jsonl", rows), max_examples=20))
    assert sum(len(v) for v in data.splits.values()) == 20
    with pytest.raises(ValueError, match="at least 10%"):
        GenDataConfig(validation_fraction=0.5, test_fraction=0.5)
    with pytest.raises(UserError, match="response_colum"):
        from_dict(GenDataConfig, {"response_colum": "x"}, "config.data")


# --------------------------------------------------------------------------- bad input

def test_misspelt_embedded_name_suggests_it():
    with pytest.raises(UserError, match="did you mean 'support-chat'"):
        load_chat_data(GenDataConfig(source="suport-chat"))


def test_missing_columns_name_the_columns_found(tmp_path):
    pd.DataFrame({"text": ["a"], "label": ["b"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(UserError, match=r"no column 'messages', nor both 'prompt' and 'response'.*columns: 'text', "
                                        r"'label'") as info:
        load_chat_data(GenDataConfig(source=str(tmp_path / "x.csv")))
    assert "\n" not in str(info.value)


def test_empty_responses_are_dropped_and_counted(tmp_path):
    rows = [_chat(i) for i in range(20)] + [_chat(99, answer="  "), _chat(98, answer="")]
    data = load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "e.jsonl", rows)))
    assert sum(len(v) for v in data.splits.values()) == 20
    assert any("2 rows with an empty prompt or response dropped" in w for w in data.warnings)
    pd.DataFrame({"prompt": ["a", "b"], "response": ["", None]}).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(UserError, match="all 2 rows have an empty prompt or response"):
        load_chat_data(GenDataConfig(source=str(tmp_path / "empty.csv")))


@pytest.mark.parametrize("messages, match", [
    ([{"role": "user", "content": "Hi"}], "ends with a user turn"),
    ([{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Yo"}], "role 'bot' is not one of"),
    ([{"role": "assistant", "content": "Yo"}], "no user turn"),
    ("Hi there", "must be a non-empty list"),
    ([], "must be a non-empty list"),
])
def test_bad_conversations(tmp_path, messages, match):
    rows = [_chat(i) for i in range(5)] + [{"messages": messages}]
    with pytest.raises(UserError, match=f"row 5: .*{match}"):
        load_chat_data(GenDataConfig(source=_jsonl(tmp_path / "bad.jsonl", rows)))


# --------------------------------------------------------------------------- encoding

@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_llama_dir)


TWO_TURNS = [{"role": "user", "content": "My printer is not printing."},
             {"role": "assistant", "content": "Check the cable and restart it."},
             {"role": "user", "content": "Still broken, thanks"},
             {"role": "assistant", "content": "Update the display driver."}]


def _runs(tokenizer, row):
    """The labelled tokens as decoded contiguous runs."""
    runs, current = [], []
    for tok, label in zip(row["input_ids"], row["labels"]):
        if label == IGNORE:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == tok
            current.append(tok)
    return [tokenizer.decode(r) for r in runs + ([current] if current else [])]


def test_labels_cover_exactly_the_assistant_turns(tokenizer):
    row = encode_chat(tokenizer, TWO_TURNS, 256)
    text = tokenizer.apply_chat_template(TWO_TURNS, tokenize=False)
    assert tokenizer.decode(row["input_ids"]) == text and row["attention_mask"] == [1] * len(row["input_ids"])
    assert _runs(tokenizer, row) == ["Check the cable and restart it.<|im_end|>", "Update the display driver.<|im_end|>"]
    # token by token: a token is labelled iff it lies inside an assistant's content + <|im_end|> in the text
    position, spans = 0, []
    for turn in ("Check the cable and restart it.", "Update the display driver."):
        start = text.index("<|im_start|>assistant\n" + turn, position) + len("<|im_start|>assistant\n")
        spans.append((start, start + len(turn) + len("<|im_end|>")))
        position = start
    at = 0
    for tok, label in zip(row["input_ids"], row["labels"]):
        piece = tokenizer.decode([tok])
        assert text.startswith(piece, at)
        assert (label != IGNORE) == any(s <= at < e for s, e in spans), (piece, at)
        at += len(piece)
    assert at == len(text)


def test_long_prompt_is_cut_from_the_left_with_a_warning(tokenizer):
    long = [{"role": "user", "content": "printer " * 200 + "help"}, {"role": "assistant", "content": "Restart it."}]
    full = encode_chat(tokenizer, long, 4096)
    with pytest.warns(UserWarning, match="cut from the left of the prompt"):
        row = encode_chat(tokenizer, long, 40)
    assert len(row["input_ids"]) == 40 and row["input_ids"] == full["input_ids"][-40:]
    assert _runs(tokenizer, row) == ["Restart it.<|im_end|>"]
    wordy = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "restart " * 100}]
    with pytest.warns(UserWarning):
        row = encode_chat(tokenizer, wordy, 40)       # the response alone is too long: half the budget is prompt
    assert len(row["input_ids"]) == 40 and sum(label != IGNORE for label in row["labels"]) == 20
    assert tokenizer.decode(row["input_ids"][:20]).endswith("<|im_start|>assistant\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_chat(tokenizer, TWO_TURNS, 256)                      # short: no warning


def test_collator_pads_right_and_pack_keeps_labels(tokenizer, tiny_llama_dir):
    import torch
    from transformers import AutoModelForCausalLM

    rows = [encode_chat(tokenizer, TWO_TURNS, 256), encode_chat(tokenizer, TWO_TURNS[:2], 256)]
    batch = make_collator(tokenizer, pad_to_multiple_of=16)(rows)
    width = batch["input_ids"].shape[1]
    assert width % 16 == 0 and width >= len(rows[0]["input_ids"])
    n = len(rows[1]["input_ids"])
    assert batch["input_ids"][1, :n].tolist() == rows[1]["input_ids"]
    assert set(batch["input_ids"][1, n:].tolist()) == {tokenizer.pad_token_id}
    assert set(batch["labels"][1, n:].tolist()) == {IGNORE} and batch["attention_mask"][1, n:].sum() == 0
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert torch.isfinite(model(**batch).loss)
    blocks = pack(rows * 3, 32)
    assert all(len(b["input_ids"]) == 32 for b in blocks[:-1]) and 0 < len(blocks[-1]["input_ids"]) <= 32
    assert [t for b in blocks for t in b["labels"]] == [t for r in rows * 3 for t in r["labels"]]
    assert [t for b in blocks for t in b["input_ids"]] == [t for r in rows * 3 for t in r["input_ids"]]
