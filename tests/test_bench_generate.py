"""scripts/bench_generate.py: a --quick run on the tiny Llama writes every engine and its ratios."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_generate.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_generate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_quick_run_measures_every_engine_against_the_pipeline(tiny_llama_dir, tmp_path, capsys):
    pytest.importorskip("onnxruntime_genai", reason="the int4/int8/fp32 engines need onnxruntime-genai")
    bench = load_script()
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--model", str(tiny_llama_dir), "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    names = {bench.BASELINE} | {f"evalhub {b}-{p}" for b, p in bench.CANDIDATES}
    assert set(result["engines"]) == names
    assert result["prompts"] == 2 and result["max_new_tokens"] == 8 and result["rounds"] == 1
    for name in names:
        row, ratios = result["engines"][name], result["ratios"][name]
        assert row["error"] is None, (name, row["error"])
        assert row["tokens_per_s_b1"] > 0 and row["tokens_per_s_b8"] > 0 and row["ttft_ms_b1"] > 0
        assert len(row["outputs"]) == 2 and 0 <= row["rougeL"] <= 1
        assert ratios["vs_pipeline_b1"] > 0 and ratios["vs_pipeline_b8"] > 0
    assert result["ratios"][bench.BASELINE]["vs_pipeline_b1"] == pytest.approx(1.0)
    assert result["ratios"][bench.REFERENCE]["rougeL_delta_points"] == pytest.approx(0.0)
    # the pipeline and evalhub's torch fp32 engine decode the same greedy tokens
    assert result["engines"][bench.BASELINE]["outputs"] == result["engines"][bench.REFERENCE]["outputs"]
    assert isinstance(result["target"]["met"], bool)
    printed = capsys.readouterr().out
    assert "target: best engine >= 5x torch fp32 tokens/s at b1 with ROUGE-L within 1 point" in printed
    assert "MET" in printed


def test_the_target_takes_the_fastest_engine_within_the_rouge_bound():
    bench = load_script()
    row = lambda kind, tps, rouge: {"kind": kind, "error": None, "tokens_per_s_b1": tps,   # noqa: E731
                                    "tokens_per_s_b8": tps, "rougeL": rouge}
    rows = {bench.BASELINE: row("baseline", 10.0, 0.30), bench.REFERENCE: row("evalhub", 12.0, 0.30),
            "evalhub onnxruntime-int4": row("evalhub", 90.0, 0.25),
            "evalhub onnxruntime-int8": row("evalhub", 66.0, 0.295)}
    ratios, target = bench.ratios_and_target(rows)
    assert ratios["evalhub onnxruntime-int4"]["vs_pipeline_b1"] == pytest.approx(9.0)
    assert ratios["evalhub onnxruntime-int4"]["rougeL_delta_points"] == pytest.approx(-5.0)
    assert target["engine"] == "evalhub onnxruntime-int8" and target["fastest_engine"] == "evalhub onnxruntime-int4"
    assert target["speedup_b1"] == pytest.approx(5.5) and target["met"]
