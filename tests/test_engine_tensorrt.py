"""The TensorRT backend: its pure parts on any machine, its builds where TensorRT and a GPU are.

Profile shapes, fitting inputs to a profile, calibration batches, cache keys, plan metadata
and the fp32 layer selection are plain functions tested here without TensorRT. The tests
marked ``requires_gpu`` build real plans of the tiny model and compare them with torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hub.engines import tensorrt_backend as trtb
from hub.engines import tensorrt_plan as plan
from hub.engines.base import BuildContext, EngineRecord
from hub.engines.tensorrt_backend import TensorRTBackend
from hub.engines.tensorrt_plan import ProfileShapes
from hub.engines.tensorrt_calibration import (batches_digest, calibration_seq_len, fixed_shape_batches,
                                              prepare_calibration)
from hub.errors import UserError
from tests.conftest import make_texts

LABELS = ["sport", "money", "music"]
H200 = {"gpu": "NVIDIA H200", "compute_capability": "9.0", "tensorrt": "10.13.0.35"}


def _tensorrt_and_gpu() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    import torch

    return torch.cuda.is_available()


def require_tensorrt(test):
    """Run ``test`` only where TensorRT and an NVIDIA GPU are; marked for ``-m requires_gpu``."""
    skip = pytest.mark.skipif(not _tensorrt_and_gpu(),
                              reason="needs TensorRT and an NVIDIA GPU (TensorRT wheels come from NVIDIA's index)")
    return pytest.mark.requires_gpu(skip(test))


# --- profile shapes ----------------------------------------------------------------------------

def test_profile_defaults_follow_max_length():
    assert plan.profile_shapes({}, max_length=256) == ProfileShapes(1, 8, 32, 8, 128, 256)
    assert plan.profile_shapes({}, max_length=32) == ProfileShapes(1, 8, 32, 8, 32, 32)    # opt clamped
    assert plan.profile_shapes({"max_batch": 4}, max_length=16) == ProfileShapes(1, 4, 4, 8, 16, 16)
    assert plan.profile_shapes({"min_seq": 200, "max_seq": 256}, max_length=128).opt_seq == 200
    resolved = plan.resolve_options({"opt_batch": 16, "quantization": "static"})    # others' keys ignored
    assert resolved["opt_batch"] == 16 and "quantization" not in resolved
    assert plan.profile_shapes(resolved, max_length=64).opt_batch == 16


@pytest.mark.parametrize("options, message", [
    ({"min_batch": 4, "opt_batch": 2}, r"min_batch=4, opt_batch=2, max_batch=32: .*needs min_batch <= opt_batch"),
    ({"opt_seq": 64, "max_seq": 32}, r"opt_seq=64, max_seq=32"),
    ({"min_seq": 0}, r"--option min_seq=0: expected a whole number >= 1"),
    ({"max_batch": "8"}, r"--option max_batch=8: expected a whole number"),
    ({"opt_batch": True}, r"--option opt_batch=True"),
    ({"max_seq": 1024}, r"--option max_seq=1024: the model has 512 positions; set max_seq to at most 512"),
])
def test_profile_errors_name_the_option(options, message):
    with pytest.raises(UserError, match=message):
        plan.profile_shapes(options, max_length=128, max_positions=512)


def test_inputs_are_fitted_to_the_profile_never_rejected():
    shapes = ProfileShapes(2, 8, 32, 8, 16, 24)
    ids = np.arange(1, 41, dtype=np.int64)[None, :]          # one text of 40 tokens
    fitted, rows = plan.fit_to_profile({"input_ids": ids, "attention_mask": np.ones_like(ids)}, shapes,
                                       {"input_ids": 9})
    assert rows == 1 and fitted["input_ids"].shape == (2, 24)  # cut to max_seq, batch filled up to min_batch
    assert (fitted["input_ids"][1] == ids[0, :24]).all()
    short = np.array([[101, 5, 102]])
    fitted, _ = plan.fit_to_profile({"input_ids": short, "attention_mask": np.ones_like(short)}, shapes,
                                    {"input_ids": 9})
    assert fitted["input_ids"][0].tolist() == [101, 5, 102, 9, 9, 9, 9, 9]    # padded to min_seq
    assert fitted["attention_mask"][0].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]


def test_large_batches_are_split_at_max_batch():
    shapes = ProfileShapes(8, 16, 32, 1, 8, 8)
    ids = np.arange(70 * 4).reshape(70, 4)
    parts = plan.profile_batches({"input_ids": ids}, shapes, {})
    assert [(p["input_ids"].shape[0], rows) for p, rows in parts] == [(32, 32), (32, 32), (8, 6)]
    assert (np.concatenate([p["input_ids"][:rows] for p, rows in parts]) == ids).all()


# --- calibration -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_calibration_batches_have_one_fixed_shape(tokenizer):
    ctx = BuildContext(model=None, tokenizer=tokenizer, labels=LABELS, max_length=32,
                       calibration_texts=[t for t, _ in make_texts(20)], work_dir=None)
    raw = ctx.calibration_batches(batch_size=8)                  # 8, 8, 4 rows, padded per batch
    names = list(raw[0])                                           # what this tokenizer gives
    assert {"input_ids", "attention_mask"} <= set(names)
    seq = calibration_seq_len(raw, min_seq=8, max_seq=32)
    assert seq == max(b["input_ids"].shape[1] for b in raw)
    batches = fixed_shape_batches(raw, names, batch_size=8, seq_len=seq + 3, pad_ids={"input_ids": 7})
    assert len(batches) == 3 and all(b[n].shape == (8, seq + 3) and b[n].dtype == np.int64
                                     for b in batches for n in names)
    assert (batches[0]["input_ids"][:, -3:] == 7).all() and (batches[0]["attention_mask"][:, -3:] == 0).all()
    first = raw[0]["input_ids"][0]
    assert (batches[2]["input_ids"][4, :len(first)] == first).all()   # the last batch wraps to real rows
    cut = fixed_shape_batches(raw, ["input_ids"], batch_size=4, seq_len=5, pad_ids={})
    assert len(cut) == 5 and set(cut[0]) == {"input_ids"} and cut[0]["input_ids"].shape == (4, 5)
    assert calibration_seq_len(raw, min_seq=16, max_seq=64) >= 16
    assert calibration_seq_len(raw, min_seq=1, max_seq=4) == 4
    assert fixed_shape_batches([], names, 8, 16, {}) == []
    assert set(fixed_shape_batches(raw, names + ["token_type_ids"], 8, 16, {})[0]) == set(names)
    assert batches_digest(batches) != batches_digest(cut) and batches_digest(cut) == batches_digest(cut)


def test_calibration_comes_from_the_training_texts_at_the_opt_batch(tokenizer):
    ctx = BuildContext(model=None, tokenizer=tokenizer, labels=LABELS, max_length=32,
                       calibration_texts=[t for t, _ in make_texts(30)], work_dir=None)
    shapes = ProfileShapes(1, 4, 32, 8, 16, 32)
    batches, seq = prepare_calibration(ctx, ["input_ids", "attention_mask"], shapes, limit=10)
    assert len(batches) == 3 and all(b["input_ids"].shape == (4, seq) for b in batches) and 8 <= seq <= 32
    ctx.calibration_texts = []
    with pytest.raises(UserError, match="int8 needs calibration texts"):
        prepare_calibration(ctx, ["input_ids"], shapes, limit=10)


# --- cache keys and plan metadata --------------------------------------------------------------

def test_cache_key_changes_with_every_component():
    base = ("NVIDIA H200", "9.0", "10.13.0.35", "int8", "ab" * 32, "calib1")
    key = plan.cache_key(*base)
    assert key == plan.cache_key(*base) and key.startswith("NVIDIA_H200-sm90-trt10.13.0.35-int8-")
    assert all(c.isalnum() or c in "._-" for c in key)
    for i, other in enumerate(("NVIDIA A100-SXM4-80GB", "8.0", "10.14.1", "fp16", "cd" * 32, "calib2")):
        changed = list(base)
        changed[i] = other
        assert plan.cache_key(*changed) != key, f"component {i} is not in the key"
    timing = plan.timing_cache_path(Path("/c"), "NVIDIA H200", "9.0", "10.13.0.35")
    assert timing.name == "timing-NVIDIA_H200-sm90-trt10.13.0.35.cache"


def test_plan_metadata_round_trip_and_mismatch_messages(tmp_path):
    shapes = ProfileShapes(1, 8, 32, 8, 128, 128)
    meta = plan.plan_metadata(H200, "fp16", shapes, ["input_ids", "attention_mask"], plan_sha256="00")
    plan.write_plan_metadata(tmp_path, meta)
    read = plan.read_plan_metadata(tmp_path)
    assert read == meta and ProfileShapes(**read["profile"]) == shapes and read["precision"] == "fp16"
    plan.check_plan_metadata(read, H200, tmp_path)            # same machine: no error
    other_gpu = {**H200, "gpu": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    with pytest.raises(UserError, match=r"built for NVIDIA H200 \(compute capability 9.0\) but this machine has "
                                        r"NVIDIA A100-SXM4-80GB \(compute capability 8.0\).*rebuild"):
        plan.check_plan_metadata(read, other_gpu, tmp_path)
    with pytest.raises(UserError, match=r"built with TensorRT 10.13.0.35 but TensorRT 10.14.1 is installed.*"
                                        r"tensorrt==10.13.0.35"):
        plan.check_plan_metadata(read, {**H200, "tensorrt": "10.14.1"}, tmp_path)


def test_damaged_or_missing_plan_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="has no plan.json; rebuild the engine"):
        plan.read_plan_metadata(tmp_path)
    (tmp_path / "plan.json").write_text("{not json")
    with pytest.raises(UserError, match="plan.json is damaged"):
        plan.read_plan_metadata(tmp_path)
    (tmp_path / "plan.json").write_text(json.dumps({"gpu": "x"}))
    with pytest.raises(UserError, match="plan.json is damaged"):
        plan.read_plan_metadata(tmp_path)
    meta = {"plan_sha256": hashlib.sha256(b"plan").hexdigest()}
    with pytest.raises(UserError, match="has no engine.plan"):
        plan.check_plan_file(tmp_path, meta)
    (tmp_path / "engine.plan").write_bytes(b"plan")
    assert plan.check_plan_file(tmp_path, meta) == b"plan"
    (tmp_path / "engine.plan").write_bytes(b"plan, damaged")
    with pytest.raises(UserError, match="does not match the digest in plan.json"):
        plan.check_plan_file(tmp_path, meta)


# --- fp32 layers under fp16 --------------------------------------------------------------------

def test_layernorm_and_softmax_layers_stay_fp32():
    scope = "/model/bert/encoder/layer.0"
    layers = [
        (f"{scope}/attention/self/query/MatMul", "MATRIX_MULTIPLY"),          # 0
        (f"{scope}/attention/self/Add", "ELEMENTWISE"),                       # 1: the mask, not a norm
        (f"{scope}/attention/self/Softmax", "SOFTMAX"),                       # 2
        (f"{scope}/attention/output/LayerNorm/LayerNormalization", "NORMALIZATION"),   # 3: opset 17
        (f"{scope}/output/LayerNorm/ReduceMean", "REDUCE"),                   # 4: decomposed, by name
        (f"{scope}/output/LayerNorm/Constant", "CONSTANT"),                   # 5: a constant is no op
        (f"{scope}/output/LayerNorm/Sub", "ELEMENTWISE"),                     # 6
        ("/classifier/Gemm", "MATRIX_MULTIPLY"),                              # 7
    ]
    assert plan.fp32_layers(layers) == [2, 3, 4, 6]
    # The same LayerNorm with anonymous names, recognised by its op sequence around constants.
    ops = ["REDUCE", "ELEMENTWISE", "CONSTANT", "ELEMENTWISE", "REDUCE", "CONSTANT", "ELEMENTWISE", "UNARY",
           "ELEMENTWISE", "SHUFFLE", "ELEMENTWISE", "ELEMENTWISE"]
    anonymous = [("MatMul_1", "MATRIX_MULTIPLY")] + [(f"node_{i}", op) for i, op in enumerate(ops)] + \
                [("MatMul_2", "MATRIX_MULTIPLY"), ("Add_9", "ELEMENTWISE")]
    assert plan.fp32_layers(anonymous) == [1, 2, 4, 5, 7, 8, 9, 11, 12]
    assert plan.fp32_layers([("a", "ELEMENTWISE"), ("b", "REDUCE"), ("c", "UNARY")]) == []


# --- availability ------------------------------------------------------------------------------

def test_without_tensorrt_check_says_what_is_missing_and_how_to_install(monkeypatch):
    monkeypatch.setattr(TensorRTBackend, "is_available", lambda self: False)
    with pytest.raises(UserError) as err:
        TensorRTBackend().check("fp16")
    message = str(err.value)
    assert "backend 'tensorrt' needs tensorrt, which is not installed" in message
    assert "pip install" in message and "--extra-index-url https://pypi.nvidia.com" in message


def test_tensorrt_versions_and_gpu_are_checked():
    trtb.check_versions("10.13.0.35", "int8", has_cuda=True)
    trtb.check_versions("11.4.0", "fp32", has_cuda=True)                   # fp32 needs no weak typing
    with pytest.raises(UserError, match=r"builds fp16 with TensorRT 10.x, but 11.4.0 is installed"):
        trtb.check_versions("11.4.0", "fp16", has_cuda=True)
    with pytest.raises(UserError, match=r"builds fp32 with TensorRT 10 or later, but 8.6.1 is installed"):
        trtb.check_versions("8.6.1", "fp32", has_cuda=True)
    with pytest.raises(UserError, match="needs an NVIDIA GPU"):
        trtb.check_versions("10.13.0.35", "fp16", has_cuda=False)


def test_the_backend_is_registered_and_imports_no_tensorrt():
    from hub.registries import ENGINES

    assert ENGINES.get("tensorrt") is TensorRTBackend
    assert TensorRTBackend.precisions == ("fp32", "fp16", "int8")
    if importlib.util.find_spec("tensorrt") is None:
        assert "tensorrt" not in sys.modules


def test_loading_a_folder_without_a_plan_is_a_user_error(tmp_path, tokenizer):
    record = EngineRecord(id="e", variant_id="v", backend="tensorrt", precision="fp16")
    with pytest.raises(UserError, match="has no plan.json"):
        TensorRTBackend().load(tmp_path, record, tokenizer, LABELS)


# --- real builds (TensorRT and a GPU) ----------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_build(tiny_model_dir, tokenizer, tmp_path_factory):
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3,
                                                               ignore_mismatched_sizes=True).eval()
    work = tmp_path_factory.mktemp("trt")
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32,
                       calibration_texts=[t for t, _ in make_texts(64, seed=5)], work_dir=work,
                       options={"cache_dir": str(work / "cache"), "opt_seq": 16})
    texts = [t for t, _ in make_texts(40, seed=3)]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():
        reference = model(**enc).logits.numpy()
    return ctx, texts, reference


def _build(ctx, precision, folder):
    backend = TensorRTBackend()
    backend.check(precision)
    used = backend.build(ctx, folder, precision)
    record = EngineRecord(id=f"trt-{precision}", variant_id="v", backend="tensorrt", precision=precision,
                          options=used, machine=backend.machine(), max_length=ctx.max_length)
    return folder, record, backend.load(folder, record, ctx.tokenizer, LABELS)


@require_tensorrt
@pytest.mark.parametrize("precision, atol", [("fp32", 1e-4), ("fp16", 5e-3), ("int8", 2e-2)])
def test_tensorrt_engine_matches_torch(tiny_build, precision, atol, tmp_path):
    ctx, texts, reference = tiny_build
    folder, record, predictor = _build(ctx, precision, tmp_path)
    logits = predictor.logits(texts)
    assert predictor.engine == f"tensorrt-{precision}" and np.isfinite(logits).all()
    assert np.abs(logits - reference).max() < atol
    meta = json.loads((folder / "plan.json").read_text())
    assert meta["precision"] == precision and meta["profile"]["max_seq"] == 32
    assert (precision == "fp32") == (meta["fp32_layers"] == 0)
    assert Path(record.options["timing_cache"]).is_file()
    long_text = " ".join(["market"] * 200)                 # longer than max_seq: truncated, no crash
    assert predictor.predict([long_text])[0] in LABELS and predictor.truncated == 1


@require_tensorrt
def test_a_plan_from_another_gpu_is_refused(tiny_build, tmp_path):
    ctx, _, _ = tiny_build
    folder, record, _ = _build(ctx, "fp32", tmp_path)
    meta = json.loads((folder / "plan.json").read_text())
    (folder / "plan.json").write_text(json.dumps({**meta, "gpu": "NVIDIA Imaginary 9000"}))
    with pytest.raises(UserError, match="built for NVIDIA Imaginary 9000"):
        TensorRTBackend().load(folder, record, ctx.tokenizer, LABELS)
