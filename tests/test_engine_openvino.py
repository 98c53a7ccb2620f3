"""The OpenVINO backend against eager torch on the tiny random BERT: fp32, bf16 and NNCF int8."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("openvino", reason="the openvino backend needs openvino: pip install 'evalhub[openvino]'")

from hub.engines.base import BuildContext, EngineRecord  # noqa: E402
from hub.errors import UserError  # noqa: E402
from tests.conftest import make_texts  # noqa: E402

LABELS = ["sport", "money", "music"]


@pytest.fixture(scope="module")
def engines(tiny, tmp_path_factory):
    """Build fp32, bf16 and int8 once from one context (one shared ONNX export)."""
    pytest.importorskip("nncf", reason="int8 needs nncf: pip install 'evalhub[openvino]'")
    from hub.engines.openvino_backend import OpenVinoBackend

    model, tokenizer = tiny
    root = tmp_path_factory.mktemp("openvino")
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32,
                       calibration_texts=[text for text, _ in make_texts(48)], work_dir=root / "work")
    backend, built = OpenVinoBackend(), {}
    for precision in backend.precisions:
        folder = root / precision
        used = backend.build(ctx, folder, precision)
        record = EngineRecord(id=f"openvino-{precision}-test", variant_id="v", backend="openvino",
                              precision=precision, options=used, max_length=ctx.max_length)
        built[precision] = (folder, record, backend.load(folder, record, tokenizer, LABELS))
    return built


def test_fp32_matches_torch(engines, texts_and_reference):
    texts, reference = texts_and_reference
    _, record, predictor = engines["fp32"]
    logits = predictor.logits(texts)
    assert np.abs(logits - reference).max() < 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()
    assert predictor.engine == "openvino-fp32 (CPU, fp32 inference)"
    assert predictor.max_length == record.max_length == 32
    assert predictor.predict(texts[:3]) == [LABELS[i] for i in reference[:3].argmax(1)]


def test_calls_from_several_threads_get_their_own_answers(engines, texts_and_reference):
    """The app shares one predictor across requests: concurrent calls take turns on the one request."""
    from concurrent.futures import ThreadPoolExecutor

    texts, reference = texts_and_reference
    predictor = engines["fp32"][2]
    jobs = [texts[i % len(texts):] + texts[:i % len(texts)] for i in range(24)]    # rotations: different batches
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(predictor.logits, jobs))
    for i, logits in enumerate(results):
        k = i % len(texts)
        np.testing.assert_allclose(logits, np.concatenate([reference[k:], reference[:k]]), atol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_stays_close(engines, texts_and_reference, precision):
    # The tiny random model's logits spread ~0.07 across labels, so near-ties may flip:
    # bound the difference relative to that spread and ask for most argmaxes to agree.
    texts, reference = texts_and_reference
    logits = engines[precision][2].logits(texts)
    spread = np.ptp(reference, axis=1).mean()
    assert np.abs(logits - reference).max() < 0.1 * spread
    assert (logits.argmax(1) == reference.argmax(1)).mean() >= 0.9


def test_recorded_options(tiny, engines):
    import nncf
    import openvino

    assert not tiny[0].training           # converting must not leave dropout on

    for precision, hint in (("fp32", "f32"), ("bf16", "bf16"), ("int8", "default")):
        folder, record, predictor = engines[precision]
        used = record.options
        assert (folder / "model.xml").is_file() and (folder / "model.bin").is_file()
        assert used["source"] == "torch" and used["openvino"] == openvino.__version__
        assert used["inputs"] == ["input_ids", "attention_mask"] == list(predictor.input_names)
        assert used["precision_hint"] == hint and used["mode"] == "latency" and used["threads"] is None
        assert used["inference_precision"] in predictor.engine      # what the CPU really runs
    assert engines["fp32"][1].options["inference_precision"] == "fp32"
    assert "nncf" not in engines["bf16"][1].options
    int8 = engines["int8"][1].options
    assert int8["nncf"] == nncf.__version__ and int8["nncf_preset"] == "mixed"
    assert int8["nncf_subset_size"] == 48
    assert 'type="FakeQuantize"' in (engines["int8"][0] / "model.xml").read_text()


def test_onnx_source_and_throughput_mode(tiny, engines, texts_and_reference, tmp_path):
    from hub.engines.openvino_backend import OpenVinoBackend

    model, tokenizer = tiny
    texts, reference = texts_and_reference
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32, calibration_texts=[],
                       work_dir=tmp_path / "work", options={"source": "onnx", "mode": "throughput", "threads": 2})
    used = OpenVinoBackend().build(ctx, tmp_path / "engine", "fp32")
    assert used["source"] == "onnx" and used["mode"] == "throughput" and used["threads"] == 2
    record = EngineRecord(id="openvino-fp32-onnx", variant_id="v", backend="openvino", precision="fp32",
                          options=used, max_length=32)
    predictor = OpenVinoBackend().load(tmp_path / "engine", record, tokenizer, LABELS)
    logits = predictor.logits(texts)          # batches split over the streams
    assert np.abs(logits - reference).max() < 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()
    assert predictor.logits(texts[:1]).shape == (1, 3)
    if len(os.sched_getaffinity(0)) >= 2:
        assert predictor.streams >= 2 and f"{predictor.streams} streams" in predictor.engine


def test_dynamic_batch_and_truncation(engines, texts_and_reference):
    texts, reference = texts_and_reference
    predictor = engines["fp32"][2]
    long_text = " ".join(["goal match team player"] * 40)             # far beyond 32 tokens
    logits = predictor.logits([long_text, texts[0]])
    assert predictor.truncated == 1
    assert np.abs(logits[1] - reference[0]).max() < 1e-4            # batch of 2, other length: same
    predictor.logits(texts[:2])
    assert predictor.truncated == 0


def test_full_window_batches_run_on_static_shapes(engines):
    from dataclasses import replace

    from hub.engines.openvino_backend import OpenVinoBackend

    folder, record, predictor = engines["fp32"]
    assert predictor.static_compile is not None            # the default, in latency mode
    window = [" ".join([words] * 20) for words in ("goal match team player", "market bank price", "song album band")]
    short = ["a short text", "the band played a song"]
    predictor.batch_size = 2
    predictor.static.clear()
    logits = predictor.logits(window + short)
    # the short pair runs dynamic, then two batches fill the 32-token window: (2, 32) and (1, 32)
    assert set(predictor.static) == {(2, 32), (1, 32)}
    dynamic = OpenVinoBackend().load(folder, replace(record, options={**record.options, "static": "off"}),
                                     predictor.tokenizer, LABELS)
    assert dynamic.static_compile is None
    dynamic.batch_size = 2
    np.testing.assert_allclose(logits, dynamic.logits(window + short), atol=1e-5, rtol=0)
    assert dynamic.static == {}
    predictor.batch_size = 32


def test_a_static_copy_that_will_not_compile_falls_back_to_dynamic(engines, caplog):
    _, _, predictor = engines["fp32"]
    texts = [" ".join(["goal match team player"] * 20)]
    expected = predictor.logits(texts)
    compile_for = predictor.static_compile
    try:
        def refuse(shape):
            raise RuntimeError("reshape is not supported for this model")
        predictor.static_compile = refuse
        predictor.static.clear()
        with caplog.at_level("WARNING"):
            np.testing.assert_allclose(predictor.logits(texts), expected, atol=1e-5, rtol=0)
            predictor.logits(texts)
        assert predictor.static[(1, 32)] is predictor.request
        assert sum("using dynamic shapes" in r.message for r in caplog.records) == 1
    finally:
        predictor.static_compile = compile_for
        predictor.static.clear()


def test_corrupt_ir_is_a_user_error(engines, tmp_path):
    import shutil

    from hub.engines.openvino_backend import OpenVinoBackend

    folder, record, _ = engines["fp32"]
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "model.xml").write_text("<net><layers>not an IR")
    with pytest.raises(UserError, match="cannot read the OpenVINO IR"):
        OpenVinoBackend().load(broken, record, None, LABELS)
    (broken / "model.xml").unlink()
    with pytest.raises(UserError, match="cannot read the OpenVINO IR"):
        OpenVinoBackend().load(broken, record, None, LABELS)


def test_bad_option_is_a_user_error(tiny, tmp_path):
    from hub.engines.openvino_backend import OpenVinoBackend

    model, tokenizer = tiny
    for options in ({"mode": "fastest"}, {"preset": "max"}, {"threads": 0}, {"source": "tflite"}):
        ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32, calibration_texts=[],
                           work_dir=tmp_path, options=options)
        with pytest.raises(UserError, match="--option"):
            OpenVinoBackend().build(ctx, tmp_path / "engine", "int8")
