"""scripts/bench_train.py: argument defaults, the timing window, and a --quick smoke run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_train.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_defaults_and_explicit_values():
    bench = load_script()
    quick = bench.parse_args(["--quick"])
    assert (quick.steps, quick.batch_size, quick.repeats, quick.methods) == (12, 8, 1, "none,lora")
    real = bench.parse_args(["--steps", "20", "--methods", "none,ia3"])
    assert (real.steps, real.batch_size, real.max_length, real.methods) == (20, 16, 128, "none,ia3")
    with pytest.raises(SystemExit):
        bench.parse_args(["--steps", "4"])  # fewer than timing warm-up + 2


def test_timed_window_skips_warmup_and_the_last_step():
    bench = load_script()
    args = bench.parse_args(["--steps", "8", "--batch-size", "4", "--timing-warmup", "2"])
    stamps = {s: float(s) for s in range(1, 8)}
    stamps[8] = 100.0  # the last step carries evalhub's final validation: outside the window
    out = bench.timed_window(stamps, args)
    assert out["timed_steps"] == 5 and out["median_step_s"] == 1.0
    assert out["samples_per_s"] == pytest.approx(4.0)


def test_rounds_alternate_which_candidate_goes_first():
    bench = load_script()
    assert [bench.round_order("ab", r) for r in range(3)] == [["a", "b"], ["b", "a"], ["a", "b"]]


@pytest.mark.slow
def test_quick_run_writes_all_figures(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          cwd=SCRIPT.parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert {"cpu_count", "torch_threads", "torch", "transformers"} <= set(report["machine"])
    vs = report["loop_vs_trainer"]
    assert len(vs["evalhub"]["samples_per_s"]) == len(vs["trainer"]["samples_per_s"]) == 1
    assert vs["ratio_evalhub_over_trainer"] > 0 and vs["evalhub"]["runs"][0]["dropout_active"]
    methods = report["peft_methods"]
    assert methods["none"]["fraction"] == 1.0 and 0 < methods["lora"]["fraction"] < 1
    assert methods["lora"]["ratios_vs_full"]["step_time"] > 0 and methods["lora"]["peak_rss_mb"] > 0
