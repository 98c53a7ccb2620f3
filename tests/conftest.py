"""Shared fixtures: a tiny random BERT with a tokenizer trained here, and a tiny dataset.

Nothing is downloaded: the tokenizer is a WordPiece model trained on the fixture's own
sentences, the model is built from a config with random weights.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.pop("EVALHUB_DB", None)   # a store in a test keeps its results beside it unless the test says otherwise

TOPICS = {
    "sport": ["match", "goal", "team", "player", "coach", "league", "score", "season"],
    "money": ["bank", "market", "price", "shares", "profit", "trade", "tax", "budget"],
    "music": ["song", "album", "band", "concert", "guitar", "singer", "chart", "tour"],
}
FILLER = ["the", "a", "this", "new", "big", "latest", "report", "says", "after", "week", "today", "on"]


def make_texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Short sentences whose topic words decide the label, so a tiny model can learn them."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = list(TOPICS)[i % len(TOPICS)]
        words = rng.sample(TOPICS[label], 3) + rng.sample(FILLER, 4)
        rng.shuffle(words)
        rows.append((" ".join(words) + f" {i}", label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and a WordPiece tokenizer, saved to disk."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def save_tiny_bert(folder: Path) -> Path:
    """The ``tiny_model_dir`` fixture's model and tokenizer, saved to ``folder`` (benchmarks use it too)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    corpus = [text for text, _ in make_texts(300)] + [" ".join(w) for w in TOPICS.values()]
    tok.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_max_length=64)
    fast.save_pretrained(folder)
    torch.manual_seed(0)  # the same random weights whichever test builds the fixture first
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                        pad_token_id=0)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "topics.csv", make_texts(240))


def tiny_config(model_dir: Path, data_path: Path, **overrides) -> dict:
    """A run config mapping for the tiny model; `overrides` replace whole sections or keys."""
    cfg = {
        "task": "text-classification",
        "seed": 7,
        "model": {"name": str(model_dir), "max_length": 32},
        "data": {"source": str(data_path)},
        "peft": {"method": "none"},
        "train": {"learning_rate": 3e-3, "batch_size": 16, "max_steps": 12, "warmup_ratio": 0.0,
                  "log_every": 4},
        "eval": {"bootstrap": 50},
        "tracking": {"report_to": []},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


@pytest.fixture
def store(tmp_path):
    from hub.store import Store

    return Store(tmp_path / "home")


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (tests/pg_server.py); skips, saying why, without one."""
    from tests.pg_server import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl; "
                    "scripts/setup.sh installs Debian's postgresql as root)")
    server = PgServer(bindir).start()
    yield server
    from hub.db.engine import dispose_engines

    dispose_engines()
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The SQLAlchemy URL of a fresh, empty database on the session's PostgreSQL server."""
    from hub.db.engine import dispose_engines

    yield postgres_server.new_database()
    dispose_engines()   # close the test's pooled connections (the server allows ~100)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The results database of a store test, once per backend: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'results.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """(model, tokenizer): the tiny BERT with a new, seeded 3-label head, in eval mode."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)    # the 3-label head is new (the saved model has 2): make it repeatable
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3,
                                                               ignore_mismatched_sizes=True).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def texts_and_reference(tiny):
    """50 topic sentences and the tiny model's eager fp32 logits for them."""
    import torch

    model, tokenizer = tiny
    texts = [text for text, _ in make_texts(50, seed=11)]
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()
    return texts, logits


from tests.hub_server import hub_server  # noqa: E402,F401  (the in-process Hub-API server fixture)
