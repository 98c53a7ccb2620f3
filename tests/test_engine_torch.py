"""The torch backend against eager torch on the tiny random BERT: fp32, bf16 eager and compiled."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from hub.engines.base import BuildContext, EngineRecord
from hub.engines.torch_backend import TorchBackend, resolve_options
from hub.errors import UserError
from tests.conftest import make_texts

LABELS = ["sport", "money", "music"]
MAX_LENGTH = 32
BF16_ATOL = 1e-3       # measured on this model: 1.7e-4 (bf16 keeps 8 bits of mantissa; logits ~0.02)


@pytest.fixture(scope="module")
def texts_and_reference(tiny):
    model, tokenizer = tiny
    texts = [text for text, _ in make_texts(40, seed=3)]
    enc = tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.no_grad():
        return texts, model(**enc).logits.numpy()


def build_and_load(tiny, folder, precision, **options):
    model, tokenizer = tiny
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=MAX_LENGTH,
                       calibration_texts=[t for t, _ in make_texts(16)], work_dir=folder, options=options)
    backend = TorchBackend()
    backend.check(precision)
    used = backend.build(ctx, folder, precision)
    record = EngineRecord(id=f"torch-{precision}-test", variant_id="v", backend="torch", precision=precision,
                          options=used, machine=backend.machine(), max_length=MAX_LENGTH)
    return backend.load(folder, record, tokenizer, LABELS), record


def easy(reference: np.ndarray, margin: float) -> np.ndarray:
    """Rows whose top logit leads the runner-up by ``margin``: a rounding error cannot flip them."""
    top2 = np.sort(reference, axis=1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]) > margin


def test_fp32_engine_equals_eager_torch(tiny, texts_and_reference, tmp_path):
    texts, reference = texts_and_reference
    predictor, record = build_and_load(tiny, tmp_path, "fp32")
    assert predictor.engine == "torch-fp32" and record.options["compile"] is False
    np.testing.assert_allclose(predictor.logits(texts), reference, atol=1e-5, rtol=0)
    assert predictor.predict(texts[:3]) == [LABELS[i] for i in reference[:3].argmax(axis=1)]


def test_build_writes_safetensors_only_and_leaves_the_model_alone(tiny, tmp_path):
    model, _ = tiny
    _, record = build_and_load(tiny, tmp_path, "bf16", compile=False)
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == ["config.json", "model.safetensors"]
    header = _safetensors_header(tmp_path / "model" / "model.safetensors")
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}
    assert next(model.parameters()).dtype == torch.float32, "the shared fp32 model must not be cast"
    opts = record.options
    assert opts["dtype"] == "bfloat16" and opts["torch"] == torch.__version__ and opts["compile"] is False
    assert {"cpu_capability", "amx", "avx512_bf16", "weights_sha256"} <= set(opts)


def _safetensors_header(path) -> dict:
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(size))


def test_bf16_eager_is_close_to_fp32(tiny, texts_and_reference, tmp_path):
    texts, reference = texts_and_reference
    predictor, _ = build_and_load(tiny, tmp_path, "bf16", compile=False)
    assert predictor.engine == "torch-bf16"
    logits = predictor.logits(texts)
    assert logits.dtype == np.float32
    assert np.abs(logits - reference).max() < BF16_ATOL
    sure = easy(reference, 2 * BF16_ATOL)
    assert sure.sum() >= 20, "too few easy rows for the argmax check to mean anything"
    assert (logits[sure].argmax(axis=1) == reference[sure].argmax(axis=1)).all()


@pytest.mark.slow(reason="torch.compile of the tiny BERT: ~20 s with a warm inductor cache, ~60 s cold "
                         "(2 shared cores)")
def test_bf16_compiled_is_close_to_fp32_across_shapes(tiny, texts_and_reference, tmp_path):
    texts, reference = texts_and_reference
    predictor, record = build_and_load(tiny, tmp_path, "bf16")
    assert predictor.engine == "torch-bf16 (compiled)" and record.options["dynamic"] is True
    for batch_size in (1, 7, 32):           # several batch and sequence shapes through one graph
        predictor.batch_size = batch_size
        logits = predictor.logits(texts)
        assert np.abs(logits - reference).max() < BF16_ATOL
    sure = easy(reference, 2 * BF16_ATOL)
    assert (logits[sure].argmax(axis=1) == reference[sure].argmax(axis=1)).all()


def test_damaged_weights_are_a_user_error(tiny, tmp_path):
    _, tokenizer = tiny
    predictor, record = build_and_load(tiny, tmp_path, "fp32")
    weights = tmp_path / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100:] = bytes(100)                         # same size, different numbers
    weights.write_bytes(bytes(data))
    with pytest.raises(UserError, match="do not match the checksum.*rebuild the engine"):
        TorchBackend().load(tmp_path, record, tokenizer, LABELS)
    weights.write_bytes(b"not a safetensors file")
    record.options.pop("weights_sha256")             # an engine recorded without a checksum
    with pytest.raises(UserError, match=r"cannot be read \(.*\); rebuild the engine"):
        TorchBackend().load(tmp_path, record, tokenizer, LABELS)
    with pytest.raises(UserError, match="has no model/config.json"):
        TorchBackend().load(tmp_path / "elsewhere", record, tokenizer, LABELS)


def test_options_are_checked_and_others_left_alone():
    assert resolve_options({}, "bf16") == {"compile": True, "dynamic": True, "threads": None}
    assert resolve_options({"compile": True}, "fp32")["compile"] is False      # fp32 is the eager reference
    assert resolve_options({"quantization": "static", "threads": 2}, "bf16")["threads"] == 2
    with pytest.raises(UserError, match="compile=true or compile=false"):
        resolve_options({"compile": "yes"}, "bf16")
    with pytest.raises(UserError, match="threads=0: expected a whole number"):
        resolve_options({"threads": 0}, "bf16")
    with pytest.raises(UserError, match="builds fp32, bf16, not 'int8'"):
        TorchBackend().check("int8")


def test_a_machine_that_cannot_compile_is_told_to_build_without(tiny, tmp_path, monkeypatch):
    from torch._dynamo.exc import BackendCompilerFailed

    from hub.engines.torch_backend import TorchEnginePredictor

    def no_compiler(self):
        raise BackendCompilerFailed(lambda *a: None, RuntimeError("no working C++ compiler found"), None)

    monkeypatch.setattr(TorchEnginePredictor, "warm_up", no_compiler)
    with pytest.raises(UserError, match=r"torch-bf16 \(compiled\): torch.compile failed on this machine .*"
                                        r"--option compile=false"):
        build_and_load(tiny, tmp_path, "bf16")
