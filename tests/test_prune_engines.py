"""Engines of pruned BERTs (per-layer head counts): ONNX Runtime's attention fusion, OpenVINO int8, `--backend auto`.

A random tiny BERT's attention is nearly uniform (weights of std 0.02 give scores near 0), so splitting
a layer into the wrong number of heads barely moves its logits: the ORT test scales the query and key
weights so that attention is peaked and a wrong head split shows (seen: |Δlogit| 1e-3 with every fused
layer given the config's 4 heads, 2e-8 with each layer's own count).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hub.cli import main
from tasks.text_classification.prune import PrunePlan, apply_plan
from tests.test_prune import parent  # noqa: F401  (the module fixture: a tiny 4-head BERT variant)

pytest.importorskip("onnxruntime", reason="the onnxruntime backend needs onnxruntime: pip install 'evalhub[onnx]'")

LABELS = ["a", "b", "c"]
PLAN = PrunePlan(heads={0: [1, 3], 1: [0], 2: [0, 1, 2]}, neurons={0: [0, 5], 1: list(range(30))})
HEADS = [2, 3, 1]   # per layer after PLAN, of 4


@pytest.fixture(scope="module")
def peaked():
    """(pruned model, tokenizer, inputs, reference logits): 3 layers of 16-wide heads, peaked attention."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=300, hidden_size=64, num_hidden_layers=3,
                                                     num_attention_heads=4, intermediate_size=128,
                                                     num_labels=len(LABELS))).eval()
    pruned = apply_plan(model, PLAN).eval()
    with torch.no_grad():
        for layer in pruned.bert.encoder.layer:
            layer.attention.self.query.weight.mul_(30)
            layer.attention.self.key.weight.mul_(30)
        pruned.classifier.weight.mul_(20)   # logits apart, so a wrong graph cannot hide in rounding
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(290)]
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})   # transformers 5 ignores vocab_file=
    texts = [" ".join(f"w{(i * 7 + j) % 290}" for j in range(5 + i % 20)) for i in range(24)]
    enc = tokenizer(texts, padding=True, return_tensors="np")
    with torch.no_grad():
        reference = pruned(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.numpy()
    return pruned, tokenizer, texts, {k: v.astype(np.int64) for k, v in enc.items()}, reference


def _build(peaked, tmp_path, backend_name: str, precision: str):
    from hub.engines.base import BuildContext
    from hub.engines.steps import backend_for, build_into

    model, tokenizer, texts, inputs, reference = peaked
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32, calibration_texts=texts,
                       work_dir=tmp_path / "ctx")
    record, predictor = build_into(backend_for(backend_name), ctx, tmp_path / "engine", precision, "v", "e")
    return record, np.abs(predictor.run(inputs) - reference).max()


def _attention_heads(path) -> list[tuple[str, int]]:
    import onnx

    graph = onnx.load(str(path)).graph
    return [(n.op_type, a.i) for n in graph.node if "Attention" in n.op_type for a in n.attribute
            if a.name == "num_heads"]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ort_fuses_attention_with_each_layers_own_head_count(peaked, tmp_path, precision):
    record, diff = _build(peaked, tmp_path, "onnxruntime", precision)
    assert record.options["fusions"]["Attention"] == 3 and record.options["attention_heads"] == HEADS
    op = "Attention" if precision == "fp32" else "QAttention"
    assert _attention_heads(tmp_path / "engine" / "model.onnx") == [(op, n) for n in HEADS]
    # fp32 is exact; int8 moves these logits (max |logit| 0.62) by ~0.02, about what a wrong head split
    # does, so there the head counts in the graph are the check
    assert diff < (1e-5 if precision == "fp32" else 5e-2), diff


def test_ort_skips_attention_fusion_with_a_logged_reason_when_heads_do_not_divide(peaked, tmp_path, monkeypatch,
                                                                                   caplog):
    from hub.engines import ort_backend

    monkeypatch.setattr(ort_backend, "head_size_of", lambda config: 7)   # no layer is whole 7-wide heads
    with caplog.at_level("WARNING", logger="hub.engines.ort_backend"):
        record, diff = _build(peaked, tmp_path, "onnxruntime", "fp32")
    assert record.options["attention_fusion"].startswith("skipped: Attention node")
    assert "Attention" not in record.options["fusions"] and not _attention_heads(tmp_path / "engine" / "model.onnx")
    assert "attention fusion skipped" in caplog.text
    assert diff < 1e-5


def test_an_unpruned_model_records_no_per_layer_heads(tiny, tmp_path):
    from hub.engines.base import BuildContext
    from hub.engines.ort_backend import OrtBackend

    model, tokenizer = tiny
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=LABELS, max_length=32, calibration_texts=[],
                       work_dir=tmp_path / "ctx")
    used = OrtBackend().build(ctx, tmp_path / "engine", "fp32")
    assert used["fusions"]["Attention"] == model.config.num_hidden_layers
    assert "attention_heads" not in used and "attention_fusion" not in used


def test_openvino_int8_of_a_pruned_model_matches_torch(peaked, tmp_path):
    pytest.importorskip("openvino")
    _, diff = _build(peaked, tmp_path, "openvino", "int8")
    assert diff < 5e-2, diff


def test_backend_auto_on_a_pruned_variant_and_its_leaderboard_row(parent, capsys):  # noqa: F811
    from hub.ui.leaderboard import store_rows

    store, parent_id = parent
    assert main(["--home", str(store.root), "prune", parent_id, "--heads", "0.5", "--ffn", "0.25",
                 "--method", "magnitude", "--recover-steps", "0", "--json"]) == 0
    variant = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["variant"]
    heads = store.get_variant(variant).train_summary["pruning"]["heads_per_layer"]
    assert sum(heads) == 4
    assert main(["--home", str(store.root), "build-engine", variant, "--backend", "auto", "--json"]) == 0
    engine_id = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["engine"]
    engine = store.get_engine(engine_id)
    assert engine.parity["passed"] and engine.auto["chose"] == engine.label
    tried = {t["backend"] + "-" + t["precision"]: t for t in engine.auto["trials"]}
    assert "onnxruntime-int8" in tried and not tried["onnxruntime-int8"].get("error")
    if "attention_heads" in tried["onnxruntime-int8"].get("options", {}):   # uneven layers: each its own count
        assert tried["onnxruntime-int8"]["options"]["attention_heads"] == heads
    rows = [r for r in store_rows(store) if r["variant"] == variant and r["engine"] == engine_id]
    assert rows and all(r["params_kept"] < 1 and r["params_m"] > 0 for r in rows)
    kept = store.get_variant(variant).train_summary["pruning"]["parameters"]["kept"]
    assert rows[0]["params_kept"] == pytest.approx(kept, abs=1e-4)
