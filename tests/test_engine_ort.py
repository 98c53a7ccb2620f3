"""The ONNX Runtime backend against eager torch on the tiny random BERT: fp32, fp16, int8.

The tiny model's random 3-label head gives logits within ~0.02 of each other, so int8 is
held to a bound on |Δlogit| more than to argmax agreement. Seen: max |Δlogit| fp32 7e-9,
fp16 2e-5, int8 dynamic 4.5e-4, int8 static 2.7e-4, argmax agreement 1.0 for all four.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime: pip install 'evalhub[onnx]'")

from hub.engines.base import BuildContext, EngineRecord  # noqa: E402
from hub.errors import UserError  # noqa: E402
from tests.conftest import make_texts  # noqa: E402

LABELS = ["sport", "money", "music"]
MAX_LENGTH = 32
BUILDS = {"fp32": ("fp32", {}), "fp16": ("fp16", {}), "int8-dynamic": ("int8", {"quantization": "dynamic"}),
          "int8-static": ("int8", {"quantization": "static"})}
FUSED = {"EmbedLayerNormalization", "Attention", "SkipLayerNormalization", "BiasGelu"}


@pytest.fixture(scope="module")
def engines(tiny, tmp_path_factory):
    """Every build once from one context (one shared ONNX export)."""
    from hub.engines.ort_backend import OrtBackend

    model, tokenizer = tiny
    root = tmp_path_factory.mktemp("onnxruntime")
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=MAX_LENGTH,
                       calibration_texts=[text for text, _ in make_texts(48)], work_dir=root / "work")
    backend, built = OrtBackend(), {}
    for name, (precision, options) in BUILDS.items():
        ctx.options = dict(options)
        folder = root / name
        used = backend.build(ctx, folder, precision)
        record = EngineRecord(id=f"onnxruntime-{name}-test", variant_id="v", backend="onnxruntime",
                              precision=precision, options=used, max_length=ctx.max_length)
        built[name] = (folder, record, backend.load(folder, record, tokenizer, LABELS))
    return built


def _compare(engines, texts_and_reference, name):
    texts, reference = texts_and_reference
    logits = engines[name][2].logits(texts)
    return np.abs(logits - reference).max(), (logits.argmax(1) == reference.argmax(1)).mean()


def test_fp32_matches_torch(engines, texts_and_reference):
    diff, agreement = _compare(engines, texts_and_reference, "fp32")
    assert diff < 1e-4 and agreement == 1.0


def test_fp16_is_close_to_torch(engines, texts_and_reference):
    diff, _ = _compare(engines, texts_and_reference, "fp16")
    assert diff < 1e-2


@pytest.mark.parametrize("name", ["int8-dynamic", "int8-static"])
def test_int8_stays_near_torch(engines, texts_and_reference, name):
    diff, agreement = _compare(engines, texts_and_reference, name)
    assert diff < 5e-3 and agreement >= 0.9


def test_options_record_the_fusions_and_the_quantization(engines):
    for name, (folder, record, predictor) in engines.items():
        options = record.options
        assert FUSED <= set(options["fusions"]), (name, options["fusions"])
        assert options["optimizer"]["opt_level"] == 1 and options["onnxruntime"]
        assert (folder / "model.onnx").is_file() and not list(folder.glob("*.data"))   # no external data
        assert predictor.engine == f"onnxruntime-{record.precision} ({predictor.provider})"
        assert predictor.provider == predictor.session.get_providers()[0]
    dynamic, static = engines["int8-dynamic"][1].options, engines["int8-static"][1].options
    assert dynamic["quantization"] == "dynamic" and dynamic["weight_type"] == "QInt8"
    assert dynamic["op_types"] == ["MatMul", "Attention"]
    assert static["quantization"] == "static" and static["format"] == "QDQ" and static["op_types"] == ["MatMul"]
    assert static["calibration_examples"] == 48 and static["per_channel"] is True
    assert "quantization" not in engines["fp32"][1].options


def test_quantized_graphs_hold_int8_operators(engines):
    import onnx

    def ops(name):
        return {node.op_type for node in onnx.load(str(engines[name][0] / "model.onnx")).graph.node}

    assert {"QAttention", "MatMulInteger", "DynamicQuantizeLinear"} <= ops("int8-dynamic")
    assert {"QuantizeLinear", "DequantizeLinear", "Attention"} <= ops("int8-static")


def test_probabilities_sum_to_one_and_only_declared_inputs_are_fed(engines, texts_and_reference):
    predictor = engines["fp32"][2]
    probs = predictor.predict_proba(texts_and_reference[0][:7])
    assert probs.shape == (7, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(predictor.input_names) == {i.name for i in predictor.session.get_inputs()}
    assert predictor.predict_proba([]).shape == (0, 3)


def test_long_text_is_truncated_not_fatal(engines, tiny):
    import torch

    model, tokenizer = tiny
    predictor = engines["fp32"][2]
    long_text = " ".join(["the match and the goal of the league season"] * 20)
    logits = predictor.logits(["a short one", long_text])
    assert predictor.truncated == 1 and predictor.max_length == MAX_LENGTH
    with torch.no_grad():
        enc = tokenizer([long_text], truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        expected = model(**enc).logits.numpy()
    assert np.abs(logits[1] - expected[0]).max() < 1e-4


def test_unreadable_or_missing_model_is_a_user_error(engines, tiny, tmp_path):
    from hub.engines.ort_backend import OrtBackend

    _, record, _ = engines["fp32"]
    (tmp_path / "model.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(UserError, match=r"model\.onnx is not a readable ONNX model"):
        OrtBackend().load(tmp_path, record, tiny[1], LABELS)
    (tmp_path / "model.onnx").unlink()
    with pytest.raises(UserError, match=r"model\.onnx is missing"):
        OrtBackend().load(tmp_path, record, tiny[1], LABELS)


def test_bad_options_are_user_errors(engines, tiny, tmp_path):
    import onnxruntime as ort

    from hub.engines.ort_backend import OrtBackend, providers_for

    backend = OrtBackend()
    with pytest.raises(UserError, match="builds fp32, fp16, int8, not 'bf16'"):
        backend.check("bf16")
    ctx = BuildContext(model=tiny[0], tokenizer=tiny[1], labels=LABELS, max_length=MAX_LENGTH, calibration_texts=[],
                       work_dir=tmp_path, options={"provider": "npu"})
    with pytest.raises(UserError, match="provider=npu"):
        backend.build(ctx, tmp_path / "engine", "fp32")
    ctx.options = {"quantization": "weights-only"}
    with pytest.raises(UserError, match="quantization=weights-only"):
        backend.build(ctx, tmp_path / "engine", "int8")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(UserError, match="CUDAExecutionProvider, which this onnxruntime does not have"):
            providers_for("CUDAExecutionProvider", "fp32")
    for options, match in (({"threads": 0}, "threads=0"), ({"spinning": "sometimes"}, "spinning=sometimes"),
                           ({"quantization": "static", "per_channel": "yes"}, "per_channel=yes")):
        ctx.options = options
        with pytest.raises(UserError, match=match):
            backend.build(ctx, tmp_path / "engine", "int8")


def test_gpu_providers_come_first_when_present(monkeypatch):
    import onnxruntime as ort

    from hub.engines.ort_backend import providers_for

    monkeypatch.setattr(ort, "get_available_providers", lambda: [
        "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    trt, cuda, cpu = providers_for(None, "fp16")
    assert trt[0] == "TensorrtExecutionProvider" and trt[1]["trt_fp16_enable"] and not trt[1]["trt_int8_enable"]
    assert (cuda, cpu) == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert providers_for(None, "int8", qdq=True)[0][1]["trt_int8_enable"]
    assert providers_for("CUDAExecutionProvider", "fp32") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers_for("CPUExecutionProvider", "fp32") == ["CPUExecutionProvider"]



def test_each_model_file_gets_its_own_tensorrt_cache(monkeypatch, tmp_path):
    """TensorRT names cache entries from graph names, not weights: two models of one shape must not share."""
    import onnxruntime as ort

    from hub.engines.ort_backend import providers_for

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["TensorrtExecutionProvider", "CPUExecutionProvider"])
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    first.write_bytes(b"weights one")
    second.write_bytes(b"weights two")
    caches = [providers_for(None, "fp32", model=m)[0][1]["trt_engine_cache_path"] for m in (first, second, first)]
    assert caches[0] != caches[1] and caches[0] == caches[2]


def test_the_shared_export_fuses_attention_and_leaves_the_model_as_it_was(tiny, tmp_path):
    """The export switches to eager attention (which ORT fuses) only while it runs."""
    from hub.engines.ort_backend import OrtBackend

    model, tokenizer = tiny
    before = model.config._attn_implementation
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=MAX_LENGTH, calibration_texts=[],
                       work_dir=tmp_path / "work")
    used = OrtBackend().build(ctx, tmp_path / "engine", "fp32")
    assert used["attention"] == "eager" and used["fusions"]["Attention"] == 2
    assert model.config._attn_implementation == before
