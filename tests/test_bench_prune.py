"""scripts/bench_prune.py: the ratios it prints, and a --quick smoke run on a tiny BERT trained there."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_prune.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_prune", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speedups_are_parent_over_pruned():
    bench = load_script()
    times = {"parent": {1: 10.0, 32: 300.0}, "h0.4-f0.4": {1: 5.0, 32: 200.0}}
    assert bench.ratios(times, "h0.4-f0.4", "parent") == {1: 2.0, 32: 1.5}


def test_settings_are_heads_slash_ffn_shares():
    import argparse

    bench = load_script()
    assert bench.setting("0.4/0.6") == (0.4, 0.6, "global") and bench.setting("0.2") == (0.2, 0.2, "global")
    assert bench.setting("0.5/0.6:layer") == (0.5, 0.6, "layer")
    assert bench.row_name(0.5, 0.6) == "h0.5-f0.6" and bench.row_name(0.5, 0.6, "layer") == "h0.5-f0.6-layer"
    for bad in ("1/0.2", "0.2/x", "a", "0.1/0.2/0.3", "-0.1", "0.2/0.2:row"):
        with pytest.raises(argparse.ArgumentTypeError, match="HEADS/FFN"):
            bench.setting(bad)


@pytest.mark.slow
def test_a_quick_run_prunes_recovers_and_times_int8_engines(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--backend", "onnxruntime", "--settings", "0.25/0.5", "0.5:layer",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["run"]) == {"load_start", "load_end", "elapsed_s"}
    (result,) = report["results"]
    rows = result["rows"]
    assert set(rows) == {"parent", "h0.25-f0.5", "h0.5-f0.5-layer"}
    assert rows["h0.5-f0.5-layer"]["parameters"] < rows["h0.25-f0.5"]["parameters"] < rows["parent"]["parameters"]
    assert sum(rows["h0.25-f0.5"]["heads_per_layer"]) == 6
    assert rows["h0.5-f0.5-layer"]["heads_per_layer"] == [2, 2] and rows["h0.5-f0.5-layer"]["intermediate_sizes"] == [32, 32]
    assert result["recovery"]["steps"] == 2 and rows["h0.5-f0.5-layer"]["recover_steps"] == 2
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["int8_accuracy"] <= 1
        assert row["int8_accuracy_delta_points"] == pytest.approx(
            100 * (row["int8_accuracy"] - rows["parent"]["int8_accuracy"]))
        assert set(row["int8_ms"]) == {"1", "32"} and all(ms > 0 for ms in row["int8_ms"].values())
    assert rows["parent"]["speedup"] == {"1": 1.0, "32": 1.0}
    printed = capsys.readouterr().out
    assert "h0.5-f0.5-layer" in printed and "load average at start" in printed and "load average at end" in printed
