"""Data loading: any source -> cleaned, split, checked ``datasets.Dataset`` s.

:func:`load_data` reads an embedded dataset (``bbc-news``, ``tweet-sentiment``), a
CSV/TSV/JSONL/JSON/Parquet file, a ``save_to_disk`` folder, a folder of data files or a
Hub dataset id; maps the configured columns to ``text``/``label``; carves the splits the
source lacks; drops empty texts; maps labels to sorted names; and reports sizes, class
balance and train/eval leakage; data with fewer than two labels is refused. The split and
clean logic is hand-written on pandas and scikit-learn because ``datasets`` has no seeded,
stratified three-way split with a fallback and these checks. The same config always gives
the same splits and hashes. Every value the data chose (a column, a label, a split name)
reaches a message through :mod:`hub.errors`, escaped and cut, and lists show their first few.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hub.embedded_data import RawSource, embedded_datasets, first_line, read_source, read_utf8
from hub.errors import UserError, clean, did_you_mean, quote
from hub.run_config import DataConfig

if TYPE_CHECKING:
    import datasets

__all__ = ["DataReport", "LoadedData", "load_data", "load_texts", "read_source", "embedded_datasets",
           "content_hash"]

ROLES = ("train", "validation", "test")
IMBALANCE_WARN = 3.0


@dataclass
class DataReport:
    source: str
    sizes: dict[str, int]  # per split after cleaning
    dropped_empty: dict[str, int]  # empty/whitespace-only texts dropped, per split
    class_counts: dict[str, dict[str, int]]  # split -> label name -> count
    imbalance_ratio: float  # max/min class count in train
    leakage: int  # validation + test texts also in train (exact match after strip)
    warnings: list[str] = field(default_factory=list)


@dataclass
class LoadedData:
    splits: dict[str, datasets.Dataset]  # "train", "validation" (may be absent), "test"
    labels: list[str]  # sorted label names; index = int label
    hashes: dict[str, str]  # split -> first 16 hex of sha256 over (text, label) rows in order
    report: DataReport


# --------------------------------------------------------------------------- the pipeline

def load_data(cfg: DataConfig, *, labels: list[str] | None = None) -> LoadedData:
    """Load, split, clean and check the data of ``cfg``.

    ``labels`` is the label set of an already-trained variant: its order is kept and any
    other label in the data is a :class:`UserError`.
    """
    raw = read_source(cfg.source)
    frames = {name: _select_columns(raw.name, name, df, cfg) for name, df in raw.splits.items()}
    if sum(len(df) for df in frames.values()) == 0:
        raise UserError(f"{raw.name}: the data has no rows; give a file or dataset with at least a few examples")
    warnings: list[str] = []
    roles, own = _make_splits(raw, frames, cfg, warnings)
    roles, dropped = _drop_empty(raw.name, roles, cfg, warnings)
    names = _label_names(raw.name, roles, own, labels)
    if labels is None:
        _require_two_labels(raw.name, [df for role, df in roles.items() if role not in own], cfg.label_column)
    ids = {role: _label_ids(df, names) for role, df in roles.items()}
    report = _report(cfg.source, roles, ids, names, dropped, warnings)
    splits = {role: _to_dataset(roles[role]["text"].tolist(), ids[role], names) for role in roles}
    hashes = {role: content_hash(roles[role]["text"].tolist(), [names[i] for i in ids[role]]) for role in roles}
    return LoadedData(splits=splits, labels=names, hashes=hashes, report=report)


def load_texts(source: str | Path, cfg: DataConfig | None = None, *, split: str | None = None) -> list[str]:
    """The non-empty texts of a source (a ``.txt`` file is one text per line); no labels needed.

    ``split`` picks one of the source's own splits; by default all rows are returned in order.
    """
    cfg = cfg or DataConfig(source=str(source))
    path = Path(source).expanduser()
    if path.suffix == ".txt" and path.is_file():
        texts: list[Any] = read_utf8(path).splitlines()
    else:
        raw = read_source(str(source))
        names = list(raw.splits)
        if split is not None and split not in raw.splits:
            raise UserError(f"{raw.name}: no split {quote(split)}{did_you_mean(split, names)}; "
                            f"splits: {_names(names)}")
        texts = []
        for name in [split] if split is not None else names:
            df = raw.splits[name]
            _require_column(raw.name, name, df, cfg.text_column, "text_column")
            texts += [_as_text(raw.name, cfg.text_column, v) for v in df[cfg.text_column]]
    return [t for t in texts if isinstance(t, str) and t.strip()]


def content_hash(texts: list[str], labels: list[str]) -> str:
    """First 16 hex digits of a sha256 over the (text, label) rows in order."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(json.dumps([text, label], ensure_ascii=False).encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- columns and values

def _names(values: list[Any], most: int = 5, limit: int = 40) -> str:
    """The first ``most`` of ``values`` for a message, each escaped, masked and cut to ``limit``
    characters, then how many more: a header of 500 long names stays a short line."""
    def short(value: Any) -> str:
        text = clean(value, 4 * limit)
        return text if len(text) <= limit else text[:limit - 1] + "…"
    shown = ", ".join(short(v) for v in values[:most])
    return shown + (f", … ({len(values) - most:,} more)" if len(values) > most else "")


def _require_column(name: str, split: str, df: pd.DataFrame, column: str, option: str) -> None:
    if column not in df.columns:
        columns = [str(c) for c in df.columns]
        where = f" of split {quote(split)}" if split != "all" else ""
        hint = did_you_mean(column, columns[:1000])   # difflib over a huge header would be slow
        raise UserError(f"{name}: missing column {quote(column)}{where}{hint}; "
                        f"columns: {_names(columns) or '(none)'}; set data.{option} to one of them")


def _select_columns(name: str, split: str, df: pd.DataFrame, cfg: DataConfig) -> pd.DataFrame:
    """Keep the text and label columns as ``text`` (str or None) and ``label`` (int or str)."""
    if len(df.columns) == 0 and len(df) == 0:
        return pd.DataFrame({"text": pd.Series([], dtype=object), "label": pd.Series([], dtype=object)})
    _require_column(name, split, df, cfg.text_column, "text_column")
    _require_column(name, split, df, cfg.label_column, "label_column")
    texts = [_as_text(name, cfg.text_column, v) for v in df[cfg.text_column]]
    labels = [_as_label(v) for v in df[cfg.label_column]]
    missing = [i for i, v in enumerate(labels) if v is None]
    if missing:
        raise UserError(f"{name}: {len(missing)} rows of split {quote(split)} have no value in label column "
                        f"{quote(cfg.label_column)} (first: row {missing[0]}); fill them in or remove them")
    return pd.DataFrame({"text": pd.Series(texts, dtype=object), "label": pd.Series(labels, dtype=object)})


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _as_text(name: str, column: str, value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return str(value)
    raise UserError(f"{name}: column {quote(column)} holds {type(value).__name__} values, not text; "
                    f"set data.text_column to the column with the texts")


def _as_label(value: Any) -> int | str | None:
    """Ints (also 2.0 from a column with gaps) stay ints so they sort numerically; the rest is str."""
    if _is_missing(value):
        return None
    if isinstance(value, (list, dict, np.ndarray)):
        return str(list(value) if isinstance(value, np.ndarray) else value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return str(value)


# --------------------------------------------------------------------------- splitting

def _make_splits(raw: RawSource, frames: dict[str, pd.DataFrame], cfg: DataConfig,
                 warnings: list[str]) -> tuple[dict[str, pd.DataFrame], set[str]]:
    """Map the source's splits to train/validation/test, carving the missing ones from train.

    Returns the splits and the evaluation roles the source supplied itself.
    """
    if not raw.presplit:
        (frame,) = frames.values()
        frame = _subsample(frame, cfg.max_examples, cfg.split_seed, "the data", warnings)
        carved = _carve(raw.name, frame, cfg, ["test", "validation"], warnings)
        return {role: carved[role] for role in ROLES if role in carved}, set()
    if cfg.train_split not in frames:
        names = list(frames)
        raise UserError(f"{raw.name}: no split {quote(cfg.train_split)}{did_you_mean(cfg.train_split, names)}; "
                        f"splits: {_names(names)}; set data.train_split to one of them")
    wanted = {"train": cfg.train_split, "validation": cfg.validation_split, "test": cfg.test_split}
    roles = {role: frames[split] for role, split in wanted.items() if split in frames}
    if cfg.max_examples is not None:  # keep the source's proportions between its splits
        total = sum(len(df) for df in roles.values())
        roles = {role: _subsample(df, max(1, round(cfg.max_examples * len(df) / total)), cfg.split_seed,
                                  f"split '{role}'", warnings) for role, df in roles.items()}
    own = set(roles) - {"train"}
    missing = [role for role in ("test", "validation") if role not in roles]
    merged = {**_carve(raw.name, roles.pop("train"), cfg, missing, warnings), **roles}
    return {role: merged[role] for role in ROLES if role in merged}, own


def _carve(name: str, frame: pd.DataFrame, cfg: DataConfig, missing: list[str],
           warnings: list[str]) -> dict[str, pd.DataFrame]:
    """Hold out the ``missing`` evaluation splits from ``frame`` (test first), stratified by label."""
    if cfg.validation_fraction == 0 and "validation" in missing:
        missing = [role for role in missing if role != "validation"]
    if missing and len(frame) < len(missing) + 1:
        raise UserError(f"{name}: only {len(frame)} rows, too few to carve {' and '.join(missing)} splits "
                        f"from; add examples")
    out: dict[str, pd.DataFrame] = {}
    rest, share = _drop_duplicates(name, frame, warnings) if missing and cfg.deduplicate else frame, 1.0
    if missing:
        _warn_rare(name, rest, missing, warnings)
    for role in missing:
        fraction = cfg.test_fraction if role == "test" else cfg.validation_fraction
        rest, out[role] = _split_off(rest, fraction / share, cfg.split_seed, role, warnings)
        share -= fraction
    out["train"] = rest
    return out


def _drop_duplicates(name: str, frame: pd.DataFrame, warnings: list[str]) -> pd.DataFrame:
    """``frame`` with one row per text (exact match after strip, the first kept): copies of a text
    carved to both sides of a split would be scored on text the model trained on."""
    stripped = frame["text"].map(lambda t: t.strip() if isinstance(t, str) else "")
    keep = ~(stripped.duplicated() & (stripped != ""))      # empty texts are dropped (and counted) later
    if not keep.all():
        warnings.append(f"{name}: {int((~keep).sum())} duplicate texts (exact match after strip) dropped before "
                        "splitting, so no copy is both trained on and scored")
    return frame[keep.to_numpy()]


def _warn_rare(name: str, frame: pd.DataFrame, missing: list[str], warnings: list[str]) -> None:
    """Warn about labels with fewer rows than one for train and one for each split carved."""
    need = len(missing) + 1
    counts = frame["label"].astype(str).value_counts(sort=False)
    rare = [(label, int(n)) for label, n in counts.items() if n < need]
    if not rare:
        return
    carved = " and ".join(missing)
    if len(rare) == 1:
        (label, n), = rare
        warnings.append(f"{name}: label {quote(label, 40)} has only {n} example(s), fewer than the {need} needed for "
                        f"one in train and in each carved split ({carved}); some splits will lack it: add examples")
        return
    shown = ", ".join(f"{quote(label, 40)} ({n})" for label, n in rare[:8])
    more = f", … ({len(rare) - 8:,} more)" if len(rare) > 8 else ""
    warnings.append(f"{name}: {len(rare):,} labels have fewer than the {need} examples needed for one in train and "
                    f"in each carved split ({carved}): {shown}{more}; some splits will lack them: add examples")


def _split_off(frame: pd.DataFrame, size: float | int, seed: int, what: str,
               warnings: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``size`` rows (a count or a share) off ``frame``; both parts keep source order."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(frame))
    strata = frame["label"].astype(str).to_numpy()
    try:
        keep, held = train_test_split(index, test_size=size, random_state=seed, stratify=strata)
    except ValueError as exc:  # a class with one member, or fewer held-out rows than classes
        try:
            keep, held = train_test_split(index, test_size=size, random_state=seed)
        except ValueError as again:   # too few rows for this share at all
            raise UserError(f"cannot carve the {what} split from {len(frame)} rows ({first_line(again)}); "
                            "add examples or lower data.test_fraction / data.validation_fraction") from None
        warnings.append(f"{what} was drawn without stratification ({first_line(exc)}), "
                        f"so its class balance may differ from train")
    return frame.iloc[np.sort(keep)], frame.iloc[np.sort(held)]


def _subsample(frame: pd.DataFrame, n: int | None, seed: int, what: str, warnings: list[str]) -> pd.DataFrame:
    """A stratified sample of ``n`` rows of ``frame`` (all of it when ``n`` is None or large)."""
    if n is None or len(frame) <= n:
        return frame
    _, sample = _split_off(frame, n, seed, f"the max_examples sample of {what}", warnings)
    return sample


# --------------------------------------------------------------------------- cleaning and labels

def _drop_empty(name: str, roles: dict[str, pd.DataFrame], cfg: DataConfig,
                warnings: list[str]) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Drop None/empty/whitespace-only texts per split; empty train or test is a UserError."""
    kept, dropped = {}, {}
    for role, df in roles.items():
        mask = df["text"].map(lambda t: isinstance(t, str) and bool(t.strip())).to_numpy(dtype=bool)
        kept[role], dropped[role] = df[mask], int((~mask).sum())
    if sum(len(df) for df in kept.values()) == 0:
        raise UserError(f"{name}: every text in column {quote(cfg.text_column)} is empty or whitespace-only; "
                        f"check data.text_column")
    for role in ("train", "test"):
        if len(kept[role]) == 0:
            raise UserError(f"{name}: split '{role}' has no non-empty texts left; add examples to it")
    if "validation" in kept and len(kept["validation"]) == 0:
        del kept["validation"]
        warnings.append("the validation split is empty after dropping empty texts and was left out")
    if any(dropped.values()):
        parts = [f"{n} from {role}" for role, n in dropped.items() if n]
        warnings.append(f"dropped {sum(dropped.values())} empty or whitespace-only texts ({', '.join(parts)})")
    return kept, dropped


def _sorted_names(values: list[int | str]) -> list[str]:
    unique = set(values)
    if all(isinstance(v, int) for v in unique):
        return [str(v) for v in sorted(unique)]  # numeric order: "2" before "10"
    return sorted({str(v) for v in unique})


def _label_names(name: str, roles: dict[str, pd.DataFrame], own: set[str],
                 labels: list[str] | None) -> list[str]:
    """The label names: ``labels`` when given, else sorted over all splits after checks."""
    if labels is not None:
        known = [str(label) for label in labels]
        for role, df in roles.items():
            _check_known(name, role, df, known)
        return known
    train = _sorted_names(roles["train"]["label"].tolist())
    for role in sorted(own & set(roles)):
        _check_known(name, role, roles[role], train)
    return _sorted_names([v for df in roles.values() for v in df["label"].tolist()])


def _require_two_labels(name: str, frames: list[pd.DataFrame], column: str) -> None:
    """The training data (train and the splits carved from it) has two labels or more: a classifier
    trained on one label scores 1.0 on data of that label and learns nothing."""
    found = _sorted_names([v for df in frames for v in df["label"].tolist()])
    if len(found) < 2:
        raise UserError(f"{name}: the training data has only one label, {quote(found[0] if found else '')}, in column "
                        f"{quote(column)}; a classifier needs at least two: check data.label_column or add "
                        f"examples of the other classes")


def _check_known(name: str, role: str, df: pd.DataFrame, known: list[str]) -> None:
    allowed = set(known)
    unknown = sorted({str(v) for v in df["label"]} - allowed)
    if unknown:
        raise UserError(f"{name}: label {quote(unknown[0])} in split {quote(role)} was never seen in training "
                        f"(known: {_names(known, most=10, limit=30)})")


def _label_ids(df: pd.DataFrame, names: list[str]) -> list[int]:
    index = {label: i for i, label in enumerate(names)}
    return [index[str(v)] for v in df["label"]]


# --------------------------------------------------------------------------- report and output

def _report(source: str, roles: dict[str, pd.DataFrame], ids: dict[str, list[int]], names: list[str],
            dropped: dict[str, int], warnings: list[str]) -> DataReport:
    counts = {role: {label: 0 for label in names} for role in roles}
    for role, role_ids in ids.items():
        for i, n in zip(*np.unique(np.asarray(role_ids, dtype=int), return_counts=True)):
            counts[role][names[i]] = int(n)
    present = {label: n for label, n in counts["train"].items() if n}
    ratio = max(present.values()) / min(present.values())
    if ratio > IMBALANCE_WARN:
        big, small = max(present, key=present.get), min(present, key=present.get)
        warnings.append(f"train classes are imbalanced {ratio:.1f}:1 ({quote(big, 40)} {present[big]} vs "
                        f"{quote(small, 40)} {present[small]}); prefer macro-F1 over accuracy")
    seen = {t.strip() for t in roles["train"]["text"]}
    leakage = sum(t.strip() in seen for role in ("validation", "test") if role in roles for t in roles[role]["text"])
    if leakage:
        warnings.append(f"{leakage} validation/test texts also appear in train (exact match after strip), "
                        f"so scores on them may be optimistic")
    return DataReport(source=source, sizes={role: len(df) for role, df in roles.items()}, dropped_empty=dropped,
                      class_counts=counts, imbalance_ratio=float(ratio), leakage=int(leakage), warnings=warnings)


def _to_dataset(texts: list[str], ids: list[int], names: list[str]) -> datasets.Dataset:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names)})
    return datasets.Dataset.from_dict({"text": texts, "label": ids}, features=features)
