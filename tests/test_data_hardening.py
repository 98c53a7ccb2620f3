"""hub.data against hostile or oversized input: secrets, special files, size and line limits,
bounded one-line messages, one-label data."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pandas as pd
import pytest

import hub.datafiles as datafiles
import hub.embedded_data as embedded
from hub.data import load_data, load_texts
from hub.errors import UserError
from hub.run_config import DataConfig
from tests.conftest import make_texts, write_csv

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz012345"


def _error(source: str | Path, **cfg) -> str:
    with pytest.raises(UserError) as info:
        load_data(DataConfig(source=str(source), **cfg))
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


# ----------------------------------------------------------------- special files and secrets

def test_symlink_to_proc_environ_is_refused_without_showing_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    for name in ("data.csv", "data.jsonl", "data.json"):
        (tmp_path / name).symlink_to("/proc/self/environ")
        message = _error(tmp_path / name)
        assert "/proc" in message and TOKEN not in message and "hf_" not in message
    (tmp_path / "lines.txt").symlink_to("/proc/self/environ")
    with pytest.raises(UserError, match="/proc") as info:
        load_texts(tmp_path / "lines.txt")
    assert TOKEN not in str(info.value)


def test_a_folder_holding_a_link_into_proc_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    write_csv(tmp_path / "train.csv", make_texts(30))
    (tmp_path / "test.csv").symlink_to("/proc/self/environ")
    message = _error(tmp_path)
    assert "test.csv" in message and "/proc" in message and TOKEN not in message


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "data.csv")
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_data(DataConfig(source=str(tmp_path / "data.csv")))
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], UserError) and "FIFO" in str(outcome[0])


@pytest.mark.parametrize("source", ["/dev/zero", "/dev/null", "/sys/kernel", "/proc/self/environ"])
def test_devices_and_system_paths_are_refused(source):
    if not os.path.exists(source):
        pytest.skip(f"{source} does not exist here")
    assert "system files, not data" in _error(source)


def test_a_huge_header_gives_a_short_message_without_the_token(tmp_path):
    columns = [f"column_{i:03d}_" + "x" * 80 for i in range(500)]
    columns[3] = TOKEN
    (tmp_path / "wide.csv").write_text(",".join(columns) + "\n" + ",".join(["v"] * 500) + "\n", encoding="utf-8")
    message = _error(tmp_path / "wide.csv")
    assert len(message) < 400 and TOKEN not in message
    assert "missing column 'text'" in message and "more)" in message


def test_user_values_are_escaped_onto_one_line(tmp_path):
    df = pd.DataFrame({"te\nxt": ["a"] * 4, "label": ["x", "y"] * 2})
    df.to_csv(tmp_path / "d.csv", index=False)
    assert "te\\nxt" in _error(tmp_path / "d.csv", text_column="te\nxt\x1b[2J")
    rows = [(f"row {i}", "ab"[i % 2]) for i in range(20)]
    write_csv(tmp_path / "labels.csv", rows + [("odd", "evil\n\x1b]0;title\x07")])
    with pytest.raises(UserError) as info:
        load_data(DataConfig(source=str(tmp_path / "labels.csv")), labels=["a", "b"])
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value) and "evil\\n" in str(info.value)


# ----------------------------------------------------------------- size and line limits

def test_a_file_over_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    write_csv(tmp_path / "d.csv", make_texts(100))
    pd.DataFrame(make_texts(100), columns=["text", "label"]).to_parquet(tmp_path / "d.parquet")
    monkeypatch.setenv("EVALHUB_MAX_DATA_MB", "0.001")
    for name in ("d.csv", "d.parquet"):
        message = _error(tmp_path / name)
        assert name in message and "bytes" in message and "0.001 MB limit" in message
        assert "EVALHUB_MAX_DATA_MB" in message
    monkeypatch.setenv("EVALHUB_MAX_DATA_MB", "1")
    assert load_data(DataConfig(source=str(tmp_path / "d.csv"))).labels == ["money", "music", "sport"]


def test_a_line_over_the_line_limit_names_its_number_and_length(tmp_path, monkeypatch):
    rows = make_texts(30)
    rows[1] = ("long " * 400, rows[1][1])                         # line 3 of the file: 2,000 characters
    write_csv(tmp_path / "d.csv", rows)
    pd.DataFrame(rows, columns=["text", "label"]).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    monkeypatch.setenv("EVALHUB_MAX_LINE_MB", "0.001")            # 1,048 bytes
    assert "line 3 is 2,00" in _error(tmp_path / "d.csv")
    message = _error(tmp_path / "d.jsonl")
    assert "line 2 is 2,0" in message and "0.001 MB limit" in message and "EVALHUB_MAX_LINE_MB" in message


def test_a_json_document_is_exempt_from_the_line_limit_not_the_size_limit(tmp_path, monkeypatch):
    rows = [{"text": f"text number {i}", "label": "ab"[i % 2]} for i in range(100)]
    (tmp_path / "d.json").write_text(json.dumps(rows), encoding="utf-8")          # one line of ~4 kB
    monkeypatch.setenv("EVALHUB_MAX_LINE_MB", "0.001")
    assert load_data(DataConfig(source=str(tmp_path / "d.json"))).labels == ["a", "b"]
    monkeypatch.setenv("EVALHUB_MAX_DATA_MB", "0.001")
    assert "MB limit for a data file" in _error(tmp_path / "d.json")


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_the_scan_is_exact_across_chunk_boundaries(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(datafiles, "_CHUNK", chunk)
    lines = ["text,label", "ä€😀 short,a", "x" * 30 + ",b", "fine,a"]
    path = tmp_path / "d.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    datafiles._scan_lines("d.csv", path, 32 / (1 << 20))          # the longest line is exactly 32 bytes
    with pytest.raises(UserError, match=r"line 3 is 32 bytes long"):
        datafiles._scan_lines("d.csv", path, 31 / (1 << 20))
    body = path.read_bytes()
    path.write_bytes(body + b"caf\xe9,b\n")
    with pytest.raises(UserError, match=rf"byte 0xe9 at position {len(body) + 3}\)"):
        datafiles._scan_lines("d.csv", path, 1.0)
    path.write_bytes(body + "😀".encode()[:3])                   # a character cut off at the end of the file
    with pytest.raises(UserError, match=rf"byte 0xf0 at position {len(body)}\)"):
        datafiles._scan_lines("d.csv", path, 1.0)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", ""])
def test_a_bad_limit_names_the_variable(tmp_path, monkeypatch, value):
    write_csv(tmp_path / "d.csv", make_texts(30))
    monkeypatch.setenv("EVALHUB_MAX_LINE_MB", value)
    if value == "":                                               # empty means unset: the default
        assert load_data(DataConfig(source=str(tmp_path / "d.csv"))).labels
        return
    message = _error(tmp_path / "d.csv")
    assert message.startswith("EVALHUB_MAX_LINE_MB=") and "positive number of megabytes" in message


def test_streamed_csv_and_jsonl_keep_their_semantics(tmp_path):
    body = "\ufefftext,label\nNA,a\nnull,b\n\"two\nlines\",a\n,b\nplain,b\n"
    (tmp_path / "d.csv").write_text(body, encoding="utf-8")
    frame = embedded.read_source(str(tmp_path / "d.csv")).splits["all"]
    assert list(frame.columns) == ["text", "label"]                 # the BOM is not part of the first name
    assert frame["text"].tolist()[:3] == ["NA", "null", "two\nlines"] and pd.isna(frame["text"][3])
    rows = [{"text": "a\u2028b", "label": "x"}, {"text": "c", "label": "y"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n",
                                      encoding="utf-8")
    frame = embedded.read_source(str(tmp_path / "d.jsonl")).splits["all"]
    assert frame.to_dict("records") == rows


# ----------------------------------------------------------------- labels

def test_one_label_data_is_refused(tmp_path):
    write_csv(tmp_path / "one.csv", [(f"text {i}", "spam") for i in range(30)])
    message = _error(tmp_path / "one.csv")
    assert "one.csv" in message and "only one label, 'spam', in column 'label'" in message
    assert "at least two" in message


def test_one_label_data_can_still_score_a_stored_variant(tmp_path):
    write_csv(tmp_path / "one.csv", [(f"text {i}", "spam") for i in range(30)])
    data = load_data(DataConfig(source=str(tmp_path / "one.csv")), labels=["ham", "spam"])
    assert data.labels == ["ham", "spam"]


def test_a_label_too_rare_for_the_splits_is_warned_about(tmp_path):
    rows = [(f"common text {i}", "common") for i in range(40)] + [("rare one", "rare"), ("rare two", "rare")]
    write_csv(tmp_path / "d.csv", rows)
    warnings = load_data(DataConfig(source=str(tmp_path / "d.csv"))).report.warnings
    assert any("label 'rare' has only 2 example(s), fewer than the 3 needed" in w for w in warnings)
    assert not any("'rare' has only" in w for w in load_data(
        DataConfig(source=str(tmp_path / "d.csv"), validation_fraction=0)).report.warnings)
    rows += [(f"odd {i}", f"odd{i}") for i in range(10)]
    write_csv(tmp_path / "d.csv", rows)
    (warning,) = [w for w in load_data(DataConfig(source=str(tmp_path / "d.csv"))).report.warnings if "11 labels" in w]
    assert "fewer than the 3 examples" in warning and "'odd0' (1)" in warning and "(3 more)" in warning
    assert len(warning) < 400
