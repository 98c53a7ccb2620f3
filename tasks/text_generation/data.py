"""Chat data: any source -> train/validation/test conversations ending with the answer to learn.

:func:`load_chat_data` reads the embedded ``support-chat``, a chat JSONL/JSON/Parquet file (a
``messages`` column of ``{"role", "content"}`` lists), a prompt/response CSV/TSV/JSONL/Parquet
file, a ``datasets.save_to_disk`` folder (Dataset or DatasetDict) or, online only, a Hub dataset
id; files, folders and Hub ids go through :func:`hub.embedded_data.read_source` (and so the
path and size checks of :mod:`hub.datafiles`). Every example becomes ``{"messages": [...]}``
ending with an assistant turn; rows with an empty answer are dropped and counted. Splits the
source lacks are carved with a seeded shuffle after dropping repeated prompts (the messages
before the answer), so no prompt is both trained on and scored; a source's own splits are
kept. Hand-written because ``datasets`` has no chat validation or prompt-disjoint split.

``support-chat`` is built from ``chatterbot-corpus``'s English YAML files (each conversation's
consecutive turns as prompt -> answer pairs). ``tech_support.yml`` alone has 1,050 rows but
only 10 distinct problem -> fix pairs, each repeated about 100 times, so deduplicated it cannot
fill three splits; the embedded set therefore takes every English category (tech support,
computers, coding and general chat): 2,306 pairs, 1,015 distinct prompts.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hub.config import opt
from hub.embedded_data import read_source
from hub.errors import UserError, clean, did_you_mean, quote, quote_list
from tasks.text_generation.chat import as_messages

ROLES = ("train", "validation", "test")
CHAT_ROLES = ("system", "user", "assistant")
EMBEDDED = {"support-chat": "about 1,000 distinct English chatterbot-corpus prompt -> answer pairs (tech "
                            "support, computers, coding, general chat); from the chatterbot-corpus package"}

__all__ = ["GenDataConfig", "LoadedChat", "load_chat_data", "chat_hash", "embedded_chat_datasets"]


@dataclass
class GenDataConfig:
    source: str = opt("support-chat", "embedded name (support-chat), a chat JSONL (messages column) or prompt/response CSV/JSONL/Parquet file, a datasets.save_to_disk folder, or a Hub dataset id")
    messages_column: str = opt("messages", "column holding whole conversations (lists of role/content turns)")
    prompt_column: str = opt("prompt", "column holding the user's message, when the data has no messages column")
    response_column: str = opt("response", "column holding the answer to learn, when the data has no messages column")
    system_prompt: str | None = opt(None, "system turn put first in every conversation that has none")
    train_split: str = opt("train", "split used for training when the data comes with splits")
    validation_split: str = opt("validation", "split used for evaluation during training")
    test_split: str = opt("test", "split used for the final evaluation")
    validation_fraction: float = opt(0.1, "share held out for validation when the data has no splits")
    test_fraction: float = opt(0.2, "share held out for test when the data has no splits")
    split_seed: int = opt(42, "seed of the split shuffle, independent of the training seed")
    max_examples: int | None = opt(None, "seeded subsample of this many conversations before splitting (quick runs)")
    deduplicate: bool = opt(True, "drop conversations whose prompt repeats before carving splits, so no prompt is both "
                                  "trained on and scored")

    def __post_init__(self) -> None:
        if not 0 <= self.split_seed < 2**32:
            raise ValueError(f"data.split_seed must be in [0, 2**32), got {self.split_seed}")
        if not 0 <= self.validation_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ValueError("data.validation_fraction must be in [0, 1) and data.test_fraction in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("data.validation_fraction + data.test_fraction must leave at least 10% for training")
        if self.max_examples is not None and self.max_examples < 10:
            raise ValueError(f"data.max_examples must be at least 10, got {self.max_examples}")


@dataclass
class LoadedChat:
    splits: dict[str, list[dict]]     # "train", "validation" (may be absent), "test" -> {"messages": [...]}
    hashes: dict[str, str]            # split -> first 16 hex of sha256 over its conversations in order
    warnings: list[str] = field(default_factory=list)
    source: str = ""


def embedded_chat_datasets() -> dict[str, str]:
    """Name -> one-line description of every embedded chat dataset."""
    return dict(EMBEDDED)


# --------------------------------------------------------------------------- the pipeline

def load_chat_data(cfg: GenDataConfig) -> LoadedChat:
    """Read, validate, split and hash the conversations of ``cfg``; bad input is one UserError."""
    warnings: list[str] = []
    if cfg.source in EMBEDDED:
        name, raw, presplit = cfg.source, {"all": _support_chat()}, False
    else:
        hint = did_you_mean(cfg.source, EMBEDDED)
        if hint and not Path(cfg.source).expanduser().exists():   # a typo, not a Hub id to try online
            raise UserError(f"{quote(cfg.source)}: no such embedded chat dataset{hint}; embedded: {', '.join(EMBEDDED)}")
        source = read_source(cfg.source)
        name, presplit = source.name, source.presplit
        raw = {split: _conversations(name, split, frame, cfg) for split, frame in source.splits.items()}
    raw = {split: _drop_empty(name, split, rows, warnings) for split, rows in raw.items()}
    if cfg.system_prompt:
        raw = {split: [{"messages": as_messages(r["messages"], cfg.system_prompt)} for r in rows]
               for split, rows in raw.items()}
    splits = _make_splits(name, raw, presplit, cfg, warnings)
    return LoadedChat(splits=splits, hashes={role: chat_hash(rows) for role, rows in splits.items()},
                      warnings=warnings, source=cfg.source)


def chat_hash(rows: list[dict]) -> str:
    """First 16 hex digits of a sha256 over the conversations in order."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row["messages"], ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- embedded

@functools.lru_cache(maxsize=1)
def _support_pairs() -> tuple[tuple[str, str], ...]:
    import yaml

    spec = importlib.util.find_spec("chatterbot_corpus")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("support-chat: the embedded dataset needs the 'chatterbot-corpus' package, which is not "
                        "installed; run `pip install chatterbot-corpus`")
    root = Path(list(spec.submodule_search_locations)[0]) / "data" / "english"
    files = sorted(root.glob("*.yml"), key=lambda p: (p.name != "tech_support.yml", p.name))
    if not files or files[0].name != "tech_support.yml":
        raise UserError(f"support-chat: no tech_support.yml under {root}; reinstall chatterbot-corpus")
    pairs = []
    for file in files:
        for conversation in (yaml.safe_load(file.read_text(encoding="utf-8")) or {}).get("conversations") or []:
            if isinstance(conversation, list):     # trivia.yml has one malformed (string) entry
                turns = [str(t).strip() for t in conversation]
                pairs += [(q, a) for q, a in zip(turns, turns[1:])]
    return tuple(pairs)


def _support_chat() -> list[dict]:
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in _support_pairs()]


# --------------------------------------------------------------------------- columns and rows

def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(name: str, column: str, value: Any) -> str:
    if _missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"{name}: column {quote(column)} holds {type(value).__name__} values, not text; "
                    f"point the column option at the column with the texts")


def _conversations(name: str, split: str, frame: Any, cfg: GenDataConfig) -> list[dict]:
    columns = [str(c) for c in frame.columns]
    if len(frame) == 0 and not columns:
        return []
    if cfg.messages_column in columns:
        return [{"messages": _messages(name, split, i, v, cfg.messages_column)}
                for i, v in enumerate(frame[cfg.messages_column])]
    if cfg.prompt_column in columns and cfg.response_column in columns:
        prompts = [_text(name, cfg.prompt_column, v) for v in frame[cfg.prompt_column]]
        answers = [_text(name, cfg.response_column, v) for v in frame[cfg.response_column]]
        return [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
                for p, a in zip(prompts, answers)]
    where = f" of split {quote(split)}" if split != "all" else ""
    found = f"columns: {quote_list(columns) or '(none)'}"
    pair = {"data.prompt_column": cfg.prompt_column, "data.response_column": cfg.response_column}
    absent = [(key, column) for key, column in pair.items() if column not in columns]
    if len(absent) == 1:      # one of the two is there: name the one that is not
        key, column = absent[0]
        raise UserError(f"{name}: no column {quote(column)}{where}{did_you_mean(column, columns[:1000])}, nor "
                        f"{quote(cfg.messages_column)}; {found}; set {key} to the column holding the "
                        f"{'answers' if key == 'data.response_column' else 'prompts'}")
    hint = did_you_mean(cfg.messages_column, columns[:1000]) or did_you_mean(cfg.prompt_column, columns[:1000])
    raise UserError(f"{name}: no column {quote(cfg.messages_column)}, nor both {quote(cfg.prompt_column)} and "
                    f"{quote(cfg.response_column)}{where}{hint}; {found}; set data.messages_column, or "
                    f"data.prompt_column and data.response_column")


def _messages(name: str, split: str, row: int, value: Any, column: str) -> list[dict]:
    """One conversation checked: a list of role/content turns, known roles, ending with the assistant."""
    where = f"{name}: row {row}" + (f" of split {quote(split)}" if split != "all" else "")
    if isinstance(value, np.ndarray):             # datasets / parquet give arrays of dicts
        value = value.tolist()
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
        raise UserError(f"{where}: column {quote(column)} must be a non-empty list of "
                        f"{{\"role\": ..., \"content\": ...}} turns, got {clean(repr(value), 60)}")
    turns = []
    for m in value:
        role = m.get("role")
        if role not in CHAT_ROLES:
            raise UserError(f"{where}: role {quote(role)} is not one of {', '.join(CHAT_ROLES)}")
        turns.append({"role": role, "content": _text(name, "content", m.get("content"))})
    if turns[-1]["role"] != "assistant":
        raise UserError(f"{where}: the conversation ends with a {turns[-1]['role']} turn; it must end with the "
                        f"assistant's answer to learn")
    if not any(t["role"] == "user" for t in turns):
        raise UserError(f"{where}: the conversation has no user turn")
    return turns


def _drop_empty(name: str, split: str, rows: list[dict], warnings: list[str]) -> list[dict]:
    """Rows whose answer or last user turn is empty are dropped and counted; all empty is an error."""
    def empty(row: dict) -> bool:
        messages = row["messages"]
        user = [m for m in messages if m["role"] == "user"]
        return not messages[-1]["content"].strip() or not user[-1]["content"].strip()

    kept = [row for row in rows if not empty(row)]
    where = f" of split {quote(split)}" if split != "all" else ""
    if rows and not kept:
        raise UserError(f"{name}: all {len(rows):,} rows{where} have an empty prompt or response; "
                        f"check the column options")
    if len(kept) < len(rows):
        warnings.append(f"{name}: {len(rows) - len(kept):,} rows{where} with an empty prompt or response dropped")
    return kept


# --------------------------------------------------------------------------- splitting

def _prompt_key(row: dict) -> str:
    return json.dumps([(m["role"], m["content"].strip()) for m in row["messages"][:-1]], ensure_ascii=False)


def _dedupe(name: str, rows: list[dict], warnings: list[str]) -> list[dict]:
    seen: set[str] = set()
    kept = []
    for row in rows:
        key = _prompt_key(row)
        if key not in seen:
            seen.add(key)
            kept.append(row)
    if len(kept) < len(rows):
        warnings.append(f"{name}: {len(rows) - len(kept):,} conversations with a repeated prompt dropped before "
                        "splitting (the first kept), so no prompt is both trained on and scored")
    return kept


def _sample(rows: list[dict], n: int | None, seed: int) -> list[dict]:
    if n is None or len(rows) <= n:
        return rows
    pick = np.sort(np.random.RandomState(seed).permutation(len(rows))[:n])
    return [rows[i] for i in pick]


def _carve(name: str, rows: list[dict], cfg: GenDataConfig, missing: list[str],
           warnings: list[str]) -> dict[str, list[dict]]:
    """Hold out the ``missing`` evaluation splits of ``rows`` (shares of all of it), source order kept."""
    missing = [r for r in missing if not (r == "validation" and cfg.validation_fraction == 0)]
    if not missing:
        return {"train": rows}
    if cfg.deduplicate:
        rows = _dedupe(name, rows, warnings)
    if len(rows) < len(missing) + 1:
        raise UserError(f"{name}: only {len(rows)} distinct conversations, too few to carve "
                        f"{' and '.join(missing)} splits from; add examples")
    order = np.random.RandomState(cfg.split_seed).permutation(len(rows))
    out, taken = {}, 0
    for role in missing:
        share = cfg.test_fraction if role == "test" else cfg.validation_fraction
        n = min(max(1, round(share * len(rows))), len(rows) - taken - 1)
        out[role] = [rows[i] for i in np.sort(order[taken:taken + n])]
        taken += n
    out["train"] = [rows[i] for i in np.sort(order[taken:])]
    return out


def _make_splits(name: str, raw: dict[str, list[dict]], presplit: bool, cfg: GenDataConfig,
                 warnings: list[str]) -> dict[str, list[dict]]:
    if sum(len(rows) for rows in raw.values()) == 0:
        raise UserError(f"{name}: the data has no rows; give a file or dataset with at least a few conversations")
    if not presplit:
        (rows,) = raw.values()
        carved = _carve(name, _sample(rows, cfg.max_examples, cfg.split_seed), cfg, ["test", "validation"], warnings)
        return {role: carved[role] for role in ROLES if role in carved}
    if cfg.train_split not in raw:
        names = list(raw)
        raise UserError(f"{name}: no split {quote(cfg.train_split)}{did_you_mean(cfg.train_split, names)}; "
                        f"splits: {quote_list(names)}; set data.train_split to one of them")
    wanted = {"train": cfg.train_split, "validation": cfg.validation_split, "test": cfg.test_split}
    roles = {role: raw[split] for role, split in wanted.items() if split in raw}
    if cfg.max_examples is not None:       # keep the source's proportions between its splits
        total = sum(len(rows) for rows in roles.values())
        roles = {role: _sample(rows, max(1, round(cfg.max_examples * len(rows) / total)), cfg.split_seed)
                 for role, rows in roles.items()}
    missing = [role for role in ("test", "validation") if role not in roles]
    merged = {**_carve(name, roles.pop("train"), cfg, missing, warnings), **roles}
    _warn_leakage(name, merged, warnings)
    return {role: merged[role] for role in ROLES if role in merged}


def _warn_leakage(name: str, splits: dict[str, list[dict]], warnings: list[str]) -> None:
    """A source's own evaluation splits are kept as given; prompts they share with train are counted."""
    train = {_prompt_key(row) for row in splits.get("train", [])}
    shared = sum(_prompt_key(row) in train for role in ("validation", "test") for row in splits.get(role, []))
    if shared:
        warnings.append(f"{name}: {shared:,} validation/test conversations have a prompt also in train; "
                        "their scores partly measure memorisation")
