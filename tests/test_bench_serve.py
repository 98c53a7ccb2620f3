"""scripts/bench_serve.py: its pure parts, the one-line advice without a store, and a tiny served run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_serve.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_serve", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_percentiles_and_the_load_summary():
    bench = load_script()
    assert bench.summarise_load([], ["TimeoutError: slow"], 1.0)["p50_ms"] is None
    assert bench.summarise_load([0.01], [], 1.0)["p95_ms"] == pytest.approx(10.0)
    spread = bench.summarise_load([x / 1000 for x in range(101)], [], 1.0)
    assert spread["p50_ms"] == pytest.approx(50.0) and spread["p95_ms"] == pytest.approx(95.0)
    out = bench.summarise_load([0.01, 0.02, 0.03], ["ValueError: no", "ValueError: again"], 2.0, 0.3, 0.06)
    assert out["requests"] == 3 and out["requests_per_s"] == pytest.approx(1.5)
    assert out["client_cpu_ms_per_request"] == pytest.approx(100.0)
    assert out["server_cpu_ms_per_request"] == pytest.approx(20.0)
    assert out["p50_ms"] == pytest.approx(20.0) and out["errors"] == 2 and out["first_error"] == "ValueError: no"


def test_an_answer_without_confidences_is_an_error():
    bench = load_script()
    assert bench.confidences({"label": "a", "confidences": [{"label": "a", "confidence": 0.75}]}) == {"a": 0.75}
    with pytest.raises(ValueError, match="without confidences"):
        bench.confidences({"label": "The text box is empty.", "confidences": []})


def test_targets_name_the_ceiling_when_the_machine_cannot_reach_them():
    bench = load_script()
    served = {"torch": {"requests_per_s": 10.0, "errors": 0, "client_cpu_ms_per_request": 5.0},
              "engine": {"requests_per_s": 15.0, "errors": 0, "client_cpu_ms_per_request": 5.0}}
    offline = {"torch": {"texts_per_s": 12.0}, "engine": {"texts_per_s": 18.0}}
    report = {"served": served, "offline": offline, "memory": {"growth": 0.02}, "cold_start_s": 9.0,
              "machine": {"cpus_usable": 2}}
    ratios, targets = bench.ratios_and_targets(report)
    assert ratios["engine_over_torch"] == pytest.approx(1.5)
    assert ratios["served_share_of_offline"]["engine"] == pytest.approx(15 / 18)
    ratio = targets["engine_over_torch"]
    assert not ratio["met"] and ratio["ceiling"] == pytest.approx(1.5) and ratio["beyond_this_machine"]
    assert all(targets[k]["met"] for k in ("errors", "served_share_of_offline", "rss_growth", "cold_start_s"))
    # the engine's model takes 2 CPUs / 18 texts/s = 111 ms a text; clients 5 ms: a 96% ceiling
    share = targets["served_share_of_offline"]
    assert share["ceiling"] == pytest.approx(1 / (1 + 5 / (2000 / 18))) and not share["beyond_this_machine"]


def test_clients_that_cost_more_cpu_than_the_model_put_the_share_beyond_the_machine():
    bench = load_script()
    served = {k: {"requests_per_s": 4.0, "errors": 1, "client_cpu_ms_per_request": 300.0} for k in ("torch", "engine")}
    offline = {k: {"texts_per_s": 100.0} for k in ("torch", "engine")}
    report = {"served": served, "offline": offline, "memory": {"growth": 0.2}, "cold_start_s": 30.0,
              "machine": {"cpus_usable": 2}}
    _, targets = bench.ratios_and_targets(report)
    share = targets["served_share_of_offline"]      # model: 20 ms a text, clients 300 ms a request
    assert share["ceiling"] == pytest.approx(1 / 16) and share["beyond_this_machine"] and not share["met"]
    assert not any(targets[k]["met"] for k in ("errors", "rss_growth", "cold_start_s"))


def test_without_a_store_it_says_how_to_make_one(tmp_path, capsys):
    bench = load_script()
    assert bench.main(["--home", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bash scripts/demo.sh --no-serve" in err


def test_a_variant_without_an_engine_is_not_benchmarked(tmp_path, tiny_model_dir, capsys):
    from hub.store import Store
    from tests.test_ui import VARIANT_ID, add_tiny_variant

    bench = load_script()
    store = Store(tmp_path / "home")
    add_tiny_variant(store, tiny_model_dir)           # on the leaderboard, but with no engine
    assert bench.main(["--home", str(store.root)]) == 2
    assert "bash scripts/demo.sh --no-serve" in capsys.readouterr().err
    assert bench.main(["--home", str(store.root), "--variant", VARIANT_ID]) == 2
    assert f"evalhub build-engine {VARIANT_ID} --backend auto" in capsys.readouterr().err


def test_process_figures_come_from_proc():
    import os

    bench = load_script()
    assert bench.rss_mb(os.getpid()) > 10 and bench.cpu_s(os.getpid()) > 0


@pytest.fixture(scope="module")
def engine_store(tmp_path_factory, tiny_model_dir, tiny_csv):
    """A tiny trained variant with a torch fp32 engine (parity passes, so it is the best engine)."""
    from hub.engines.build import build_engine
    from hub.run_config import parse_run_config
    from hub.store import Store
    from tasks.text_classification.train import train
    from tests.conftest import tiny_config

    store = Store(tmp_path_factory.mktemp("bench-serve") / "home")
    variant_id = train(parse_run_config(tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 5})), store,
                       show_progress=False)
    engine_id = build_engine(store, variant_id, "torch", "fp32", log=lambda *_: None, budget_s=0.05)
    return store, variant_id, engine_id


@pytest.mark.slow
def test_a_short_run_reports_every_figure(engine_store, tmp_path):
    bench = load_script()
    store, variant_id, engine_id = engine_store
    out = tmp_path / "bench.json"
    assert bench.main(["--home", str(store.root), "--seconds", "2", "--clients", "2", "--offline-seconds", "0.5",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["settings"]["variant"] == variant_id and report["settings"]["engine"] == engine_id
    for kind in ("torch", "engine"):
        served = report["served"][kind]
        assert served["errors"] == 0 and served["requests"] > 0, served["first_error"]
        assert 0 < served["p50_ms"] <= served["p95_ms"] and served["requests_per_s"] > 0
        assert report["offline"][kind]["texts_per_s"] > 0
        assert served["client_cpu_s"] > 0 and served["server_cpu_s"] > 0
    assert 0 < report["cold_start_s"] < 120 and report["server_exit"] is not None
    memory = report["memory"]
    assert 0 < memory["first_answer_mb"] <= memory["start_mb"] * 1.5 and memory["end_mb"] > 0
    assert set(report["targets"]) == {"errors", "engine_over_torch", "served_share_of_offline", "rss_growth",
                                      "cold_start_s"}
    assert report["targets"]["errors"]["met"] and report["ratios"]["engine_over_torch"] > 0
