"""scripts/bench_train.py: argument defaults, the timing window, and --quick smoke runs of both
tasks (text-generation: scripts/bench_train_gen.py against TRL's SFTTrainer)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_train.py"
GEN_SCRIPT = SCRIPT.with_name("bench_train_gen.py")


def load_script(path: Path = SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_defaults_and_explicit_values():
    bench = load_script()
    assert bench.parse_args([]).task == "text-classification"
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


def test_generation_template_marks_the_tokens_evalhub_trains_on():
    from tasks.text_generation.encode import encode_chat
    from tests.gen_fixtures import tiny_tokenizer

    gen, tokenizer = load_script(GEN_SCRIPT), tiny_tokenizer()
    messages = [{"role": "user", "content": "My printer is not printing"},
                {"role": "assistant", "content": "Check the cable and restart it."},
                {"role": "user", "content": "Thanks"}, {"role": "assistant", "content": "Hello, how can I help?"}]
    template = gen.training_template(tokenizer.chat_template)
    assert "{% generation %}" in template and gen.training_template(template) == template
    assert (tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template)
            == tokenizer.apply_chat_template(messages, tokenize=False))      # the same text, markers aside
    theirs = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=True, return_dict=True,
                                           return_assistant_tokens_mask=True)
    ours = encode_chat(tokenizer, messages, 256)
    assert list(theirs["input_ids"]) == ours["input_ids"]
    assert [t if m else -100 for t, m in zip(theirs["input_ids"], theirs["assistant_masks"])] == ours["labels"]
    with pytest.raises(SystemExit, match="ChatML"):
        gen.training_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")


def test_generation_quick_run_compares_like_with_like(tmp_path):
    try:
        import trl  # noqa: F401
    except ImportError as exc:   # not installed, or not importable beside this transformers
        pytest.skip(f"the text-generation baseline is TRL's SFTTrainer, not importable here ({exc}); "
                    "install it with .venv/bin/pip install 'trl==1.16.0' (the bench extra)")
    out = tmp_path / "bench_gen.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--task", "text-generation", "--quick", "--json", str(out)],
                          cwd=SCRIPT.parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["trl"] and report["settings"]["task"] == "text-generation"
    res = report["loop_vs_sft_trainer"]
    ours, theirs = res["evalhub"], res["sft_trainer"]
    assert ours["median_samples_per_s"] > 0 and theirs["median_samples_per_s"] > 0
    assert res["ratio_evalhub_over_sft_trainer"] == pytest.approx(
        ours["median_samples_per_s"] / theirs["median_samples_per_s"])
    assert 0 < ours["trainable"]["trainable"] == theirs["trainable"]["trainable"] < ours["trainable"]["total"]
    assert ours["steps"] == theirs["steps"] == report["settings"]["steps"]
    assert res["same_batches"] and res["label_agreement"] == 1.0 and res["rows_over_max_length"] == 0
