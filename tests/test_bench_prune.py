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
    times = {"parent": {1: 10.0, 32: 300.0}, "pruned-0.4": {1: 5.0, 32: 200.0}}
    assert bench.ratios(times, "pruned-0.4", "parent") == {1: 2.0, 32: 1.5}


@pytest.mark.slow
def test_a_quick_run_prunes_recovers_and_times_int8_engines(tmp_path, capsys):
    bench = load_script()
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--backend", "onnxruntime", "--json", str(out)]) == 0
    (result,) = json.loads(out.read_text())
    rows = result["rows"]
    assert set(rows) == {"parent", "pruned-0.2", "pruned-0.4"}
    assert rows["pruned-0.4"]["parameters"] < rows["pruned-0.2"]["parameters"] < rows["parent"]["parameters"]
    for row in rows.values():
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["int8_accuracy"] <= 1
        assert set(row["int8_ms"]) == {"1", "32"} and all(ms > 0 for ms in row["int8_ms"].values())
    assert rows["parent"]["speedup"] == {"1": 1.0, "32": 1.0}
    assert "pruned-0.4" in capsys.readouterr().out
