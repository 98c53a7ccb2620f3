"""Generation engines on a tiny random Llama: torch bf16 and onnxruntime-genai fp32/int4 build,
load and pass through the parity and latency reports."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_gen_predict import PROMPTS, lively

REFS = ["check the cable and restart it", "hello how can I help today", "update the display driver",
        "reset the router", "try another usb port"]
genai = pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed")


@pytest.fixture(scope="module")
def ctx(tiny_llama_dir, tmp_path_factory):
    """The fixture's tokenizer on a 64-wide Llama (head size 16: onnxruntime-genai's CPU attention
    takes head sizes that are multiples of 16), saved apart from the shared fixture."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tasks.text_generation.engines import GenBuildContext

    folder = tmp_path_factory.mktemp("gen-llama64")
    _, tok = lively(tiny_llama_dir)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    model, tok = lively(folder)
    return GenBuildContext(model=model, tokenizer=tok, max_length=256, work_dir=tmp_path_factory.mktemp("gen-build"))


@pytest.fixture(scope="module")
def reference(ctx):
    from tasks.text_generation.predict import GenerationPredictor

    return GenerationPredictor(ctx.model, ctx.tokenizer, max_new_tokens=16)


def record(backend, precision, options):
    from hub.engines.base import EngineRecord

    return EngineRecord(id=f"e-{precision}", variant_id="v", backend=backend, precision=precision,
                        options=options, max_length=256)


def test_torch_bf16_builds_loads_and_reports(ctx, reference, tmp_path):
    from tasks.text_generation.engines import GenTorchBackend
    from tasks.text_generation.gen_reports import latency_metrics, latency_report, parity_report

    backend = GenTorchBackend()
    backend.check("bf16")
    options = backend.build(ctx, tmp_path, "bf16")
    assert options["dtype"] == "bfloat16" and (tmp_path / "model" / "model.safetensors").is_file()
    engine = backend.load(tmp_path, record("torch", "bf16", options), None, [])
    assert engine.engine == "torch-bf16" and engine.task == "text-generation" and engine.labels == []
    report = parity_report(reference, engine, PROMPTS, REFS, n_tokens=8, max_new_tokens=12)
    assert report["finite"] and 0 < report["max_abs_logit_diff"] < 5
    assert set(report) >= {"token_agreement", "rougeL_delta", "chrf_delta", "passed"}
    lat = latency_report(engine, ctx.tokenizer, batches=(1, 2), prompt_lengths=(8, 300), new_tokens=4,
                         budget_s=0.1, min_runs=1)
    assert [(c["batch"], c["prompt_tokens"]) for c in lat["cells"]] == [(1, 8), (2, 8)]   # 300 does not fit
    assert all(c["tokens_per_s"] > 0 and c["ttft_ms"] > 0 for c in lat["cells"])
    metrics = latency_metrics(lat)
    assert {"tokens_per_s_b1", "ttft_ms_b1", "tokens_per_s_b2", "p50_ms_b2_p8"} <= set(metrics)


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_genai_builds_loads_and_matches_torch(ctx, reference, tmp_path, precision):
    from tasks.text_generation.engines import GenOrtBackend
    from tasks.text_generation.gen_reports import parity_report

    backend = GenOrtBackend()
    assert backend.is_available()
    backend.check(precision)
    options = backend.build(ctx, tmp_path, precision)
    assert (tmp_path / "genai" / "genai_config.json").is_file()
    engine = backend.load(tmp_path, record("onnxruntime", precision, options), ctx.tokenizer, [])
    report = parity_report(reference, engine, PROMPTS, REFS, n_tokens=16, max_new_tokens=16)
    assert report["finite"]
    if precision == "fp32":
        assert report["token_agreement"] == 1.0 and report["max_abs_logit_diff"] < 1e-3
        assert report["passed"] and report["rougeL_delta"] == pytest.approx(0.0, abs=1e-9)
        # teacher-forced scoring of a given response (explanations, faithfulness, perplexity) agrees
        ours, theirs = engine.response_logprobs(PROMPTS[:3], REFS[:3]), reference.response_logprobs(PROMPTS[:3], REFS[:3])
        assert [len(a) for a in ours] == [len(b) for b in theirs] and all(len(a) for a in ours)
        assert all(np.allclose(a, b, atol=1e-3) for a, b in zip(ours, theirs))
        assert engine.perplexity(PROMPTS[:2], REFS[:2]) == pytest.approx(reference.perplexity(PROMPTS[:2], REFS[:2]),
                                                                         rel=1e-3)
        # so captum's feature ablation runs on the engine and explains as the torch model does
        from evaluators.explain.generation import GenerationExplainEvaluator

        kwargs = {"methods": ["ablation"], "max_examples": 2, "max_target_tokens": 4, "bootstrap": 0}
        on_engine = GenerationExplainEvaluator().evaluate(engine, PROMPTS[:2], REFS[:2], [], **kwargs).records
        on_torch = GenerationExplainEvaluator().evaluate(reference, PROMPTS[:2], REFS[:2], [], **kwargs).records
        assert [r["explained"] for r in on_engine] == [r["explained"] for r in on_torch] and on_engine
        for a, b in zip(on_engine, on_torch):
            assert a["attributions"]["ablation"] == pytest.approx(b["attributions"]["ablation"], abs=5e-3)
    pieces = list(engine.stream(PROMPTS[0], max_new_tokens=12))
    assert "".join(pieces) == engine.generate([PROMPTS[0]], 12)[0]
    assert engine.last_stats["new_tokens"] > 0 and engine.last_stats["ttft_s"] is not None
    assert engine.generate([]) == []
    long = "check the cable and restart it " * 60        # past the engine's 256-token context
    assert len(engine.generate([long, PROMPTS[1]], 8)) == 2 and engine.truncated == 1
    streamed = "".join(engine.stream(long, max_new_tokens=4))      # the chat demo's path: cut alike, no crash
    assert isinstance(streamed, str) and engine.truncated == 1


def test_builder_failure_and_missing_genai_are_one_sentence(ctx, tmp_path, monkeypatch):
    from hub.errors import UserError
    from tasks.text_generation import engines

    with pytest.raises(UserError, match="model builder could not build"):
        engines.run_builder(tmp_path / "nowhere", tmp_path / "out", "int4", tmp_path / "cache")
    with pytest.raises(UserError, match="int4_block_size"):
        engines._builder_extras({"int4_block_size": 7}, "int4")
    monkeypatch.setattr(engines, "GENAI_PACKAGE", "onnxruntime_genai_missing")
    backend = engines.GenOrtBackend()
    assert not backend.is_available()
    with pytest.raises(UserError, match="onnxruntime-genai cannot be imported"):
        backend.check("int4")
    from transformers import LlamaConfig, LlamaForCausalLM

    head8 = LlamaForCausalLM(LlamaConfig(vocab_size=len(ctx.tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2))
    small = engines.GenBuildContext(model=head8, tokenizer=ctx.tokenizer, max_length=64, work_dir=tmp_path)
    with pytest.raises(UserError, match="multiple of 16"):
        engines.GenOrtBackend().build(small, tmp_path / "e", "int4")


def test_show_reads_generation_parity_and_auto_trials():
    """`evalhub show` prints a generation engine's parity and its auto trials through the task's own
    keys (token agreement, ROUGE-L/chrF deltas, ms per token), not classification's agreement."""
    from types import SimpleNamespace

    from hub.report import describe_variant, trial_line
    from tasks.text_generation.task import TASK

    trial = {"backend": "onnxruntime", "precision": "int4", "passed": True, "token_agreement": 0.75,
             "rougeL_delta": -0.004, "chrf_delta": 0.001, "ms_per_token_b1": 14.24, "ms_per_token_b8": 5.1}
    assert trial_line(trial, TASK.auto_parity_keys) == (
        "onnxruntime-int4     b1 14.2 ms/token, b8 5.1 ms/token, token_agreement 0.7500, rougeL_delta -0.0040, "
        "chrf_delta 0.0010, parity passed")
    parity = {"token_agreement": 0.75, "rougeL_delta": -0.004, "max_abs_logit_diff": 0.31, "passed": True}
    engine = SimpleNamespace(id="onnxruntime-int4-abc123", backend="onnxruntime", precision="int4", parity=parity,
                             auto={"why": "fastest", "trials": [trial]})
    record = SimpleNamespace(id="v", name="v", task="text-generation", base_model="smollm2", peft_method="lora",
                             dataset={"source": "support-chat", "sizes": {}}, labels=[], seed=1, config_hash="c",
                             versions={}, parent_id=None, hyperparameters={}, train_summary={"steps": 3})
    shown = describe_variant(record, [], {}, [engine])
    assert ("engine onnxruntime-int4-abc123  onnxruntime int4  parity: first 32 tokens equal 0.750, ROUGE-L Δ "
            "-0.0040, max |Δlogit| 3.10e-01 -> passed") in shown
    assert "nan" not in shown and "labels" not in shown           # a task without labels has no labels line
