"""Structured pruning (tasks/text_classification/prune.py, recover.py, `evalhub prune`) on tiny random BERTs."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch

from hub.cli import main
from hub.errors import UserError
from hub.run_config import parse_run_config
from tasks.text_classification.prune import (PrunePlan, PruneSettings, apply_plan, check_architecture,
                                             count_parameters, plan_pruning, prune_model)
from tests.conftest import tiny_config

HEAD = 8   # head size of the 4-head fixture: 32 wide / 4 heads


def tiny_bert(num_labels: int = 3, seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(config).eval()


def batch(seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 120, (6, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 8:] = mask[3, 5:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([0, 1, 2, 0, 1, 2])}


def masked_reference(model, plan: PrunePlan):
    """The unpruned model with the plan's heads masked and neurons zeroed: a head's value rows at zero make
    its output zero (what head_mask did in transformers 4), a neuron's input row at zero makes GELU(0) = 0."""
    ref = tiny_bert()
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        for layer, heads in plan.heads.items():
            value = ref.bert.encoder.layer[layer].attention.self.value
            for h in heads:
                value.weight[h * HEAD:(h + 1) * HEAD] = 0
                value.bias[h * HEAD:(h + 1) * HEAD] = 0
        for layer, neurons in plan.neurons.items():
            dense = ref.bert.encoder.layer[layer].intermediate.dense
            dense.weight[neurons] = 0
            dense.bias[neurons] = 0
    return ref.eval()


def test_surgery_removes_exactly_the_chosen_heads_and_neurons_and_equals_the_masked_model():
    model = tiny_bert()
    plan = PrunePlan(heads={0: [1, 3], 1: [0]}, neurons={0: [0, 5, 63], 1: list(range(10, 30))})
    pruned = apply_plan(model, plan).eval()
    layer0, layer1 = pruned.bert.encoder.layer
    assert layer0.attention.self.query.weight.shape == (2 * HEAD, 32)
    assert layer1.attention.self.value.weight.shape == (3 * HEAD, 32)
    assert layer0.attention.output.dense.weight.shape == (32, 2 * HEAD)
    assert layer0.intermediate.dense.weight.shape == (61, 32) and layer0.output.dense.weight.shape == (32, 61)
    assert layer1.intermediate.dense.weight.shape == (44, 32) and layer1.output.dense.weight.shape == (32, 44)
    # the kept slices are the original rows, in order
    original = model.bert.encoder.layer[0].attention.self.key.weight
    assert torch.equal(layer0.attention.self.key.weight, torch.cat([original[0:8], original[16:24]]))
    assert pruned.config.pruned_heads == {0: [1, 3], 1: [0]} and pruned.config.intermediate_sizes == [61, 44]
    with torch.no_grad():
        got = pruned(**{k: v for k, v in batch().items() if k != "labels"}).logits
        want = masked_reference(model, plan)(**{k: v for k, v in batch().items() if k != "labels"}).logits
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert count_parameters(pruned) < count_parameters(model)
    assert model.bert.encoder.layer[0].attention.self.query.weight.shape == (32, 32), "the source is left as it was"


def test_save_pretrained_round_trips_through_the_auto_classes_and_reprunes_in_original_numbers(tmp_path):
    from transformers import AutoConfig, AutoModelForSequenceClassification

    model = tiny_bert()
    pruned = apply_plan(model, PrunePlan(heads={0: [1, 3], 1: [0]}, neurons={1: [2, 4]})).eval()
    pruned.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "evalhub-pruned-bert" and config["intermediate_sizes"] == [64, 62]
    assert config["pruned_heads"] == {"0": [1, 3], "1": [0]}
    assert AutoConfig.from_pretrained(tmp_path / "m").pruned_heads == {0: [1, 3], 1: [0]}
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m", use_safetensors=True).eval()
    inputs = {k: v for k, v in batch().items() if k != "labels"}
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, pruned(**inputs).logits, atol=0, rtol=0)
    # layer 0 now holds original heads 0 and 2: removing its head 1 (original 2) records 2
    again = apply_plan(loaded, PrunePlan(heads={0: [1]}))
    assert again.config.pruned_heads == {0: [1, 2, 3], 1: [0]}
    assert again.bert.encoder.layer[0].attention.self.query.out_features == HEAD


def test_taylor_and_magnitude_plans_keep_a_head_per_layer_and_refuse_emptying_one():
    model = tiny_bert()
    for method in ("taylor", "magnitude"):
        pruned, lineage = prune_model(model, PruneSettings(heads=0.75, ffn=0.5, method=method), [batch(), batch(2)])
        assert lineage["heads_per_layer"] == [1, 1] and lineage["intermediate_sizes"] == [32, 32]
        assert lineage["parameters"]["after"] == count_parameters(pruned)
        assert 0 < lineage["parameters"]["kept"] < 1
    # 7 of 8 heads would leave a layer with none
    scores = [torch.rand(4), torch.rand(4)]
    with pytest.raises(UserError, match="leaving a layer with none.*at most 6 can go"):
        plan_pruning(scores, [torch.rand(64)] * 2, PruneSettings(heads=0.9, ffn=0.0))
    # the lowest layer-normalised Taylor scores go first
    plan = plan_pruning([torch.tensor([1.0, 0.1, 1.0, 1.0]), torch.tensor([1.0, 1.0, 0.2, 1.0])],
                        [torch.arange(64.0)] * 2, PruneSettings(heads=0.25, ffn=0.25))
    assert plan.heads == {0: [1], 1: [2]} and plan.neurons[0] == list(range(16))
    # global ranking may take several heads of one layer; head_scope="layer" takes the share from each
    uneven = [torch.tensor([0.1, 0.2, 0.3, 1.0]), torch.tensor([1.0, 1.0, 1.0, 0.9])]
    assert plan_pruning(uneven, [torch.arange(64.0)] * 2, PruneSettings(heads=0.25, ffn=0)).heads == {0: [0, 1]}
    per_layer = plan_pruning(uneven, [torch.arange(64.0)] * 2, PruneSettings(heads=0.25, ffn=0, head_scope="layer"))
    assert per_layer.heads == {0: [0], 1: [3]} and per_layer.neurons == {}
    with pytest.raises(UserError, match="--head-scope 'row'"):
        PruneSettings(head_scope="row")


def test_settings_and_architecture_are_checked_in_one_sentence():
    from transformers import RobertaConfig

    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(UserError, match=r"must be in \[0, 1\)"):
            PruneSettings(heads=bad)
    with pytest.raises(UserError, match="cannot prune a 'roberta' model; supported architectures: bert"):
        check_architecture(RobertaConfig(), "variant x")


def test_distillation_loss_decreases_on_a_fixed_batch():
    from tasks.text_classification.recover import DistillationModel, distillation_loss

    teacher = tiny_bert(seed=0)
    with torch.no_grad():
        teacher.classifier.weight.mul_(50)    # confident soft targets (a random head's are nearly uniform)
    student = apply_plan(tiny_bert(seed=1), PrunePlan(heads={0: [0, 1], 1: [3]}, neurons={0: list(range(32))}))
    for module in student.modules():          # no dropout: the same batch gives the same loss
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    wrapper = DistillationModel(student, teacher, temperature=2.0, alpha=0.5).train()
    assert set(wrapper.state_dict()) == {f"student.{k}" for k in student.state_dict()}, "the teacher is not saved"
    optimizer = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        loss = wrapper(**batch()).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.8 * losses[0]
    assert not any(p.grad is not None for p in teacher.parameters())
    # the formula: alpha * KL * T^2 + (1 - alpha) * CE; equal logits leave the CE alone
    logits, labels = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert distillation_loss(logits, logits, labels, 3.0, 0.4).item() == pytest.approx(0.6 * ce.item())
    soft = distillation_loss(logits, torch.tensor([[0.0, 0.0, 3.0]]), labels, 2.0, 1.0)
    p_t = torch.softmax(torch.tensor([0.0, 0.0, 3.0]) / 2, -1)
    kl = (p_t * (p_t.log() - torch.log_softmax(logits[0] / 2, -1))).sum() * 4
    assert soft.item() == pytest.approx(kl.item(), rel=1e-5)
    wrapper.eval()
    assert wrapper(**batch()).loss.item() == pytest.approx(
        torch.nn.functional.cross_entropy(student(**batch()).logits, batch()["labels"]).item(), rel=1e-5)


# -- the variant flow ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def parent(tmp_path_factory, tiny_model_dir, tiny_csv):
    """A 4-head tiny BERT fine-tuned as a variant (the conftest model has 2 heads: too few to prune well)."""
    from hub.store import Store
    from tasks.text_classification.train import train

    folder = tmp_path_factory.mktemp("bert4")
    for name in tiny_model_dir.iterdir():
        if "token" in name.name or name.name == "special_tokens_map.json":
            shutil.copy(name, folder / name.name)
    model = tiny_bert()
    model.save_pretrained(folder)
    store = Store(tmp_path_factory.mktemp("prune") / "home")
    cfg = parse_run_config(tiny_config(folder, tiny_csv, train={"max_steps": 12}))
    return store, train(cfg, store, show_progress=False)


def test_prune_command_stores_a_recovered_variant_with_its_lineage(parent, capsys):
    from hub.engines.build import build_engine

    store, parent_id = parent
    code = main(["--home", str(store.root), "prune", parent_id, "--heads", "0.5", "--ffn", "0.25",
                 "--recover-steps", "3", "--temperature", "3", "--alpha", "0.6", "--json"])
    assert code == 0
    made = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    record = store.get_variant(made["variant"])
    assert record.parent_id == parent_id and record.peft_method == "none" and record.labels
    pruning = record.train_summary["pruning"]
    assert pruning["settings"] == {"heads": 0.5, "ffn": 0.25, "method": "taylor", "importance_batches": 8,
                                   "head_scope": "global"}
    assert pruning["recovery"] == {"steps": 3, "temperature": 3.0, "alpha": 0.6, "learning_rate": 5e-5}
    assert sum(pruning["heads_per_layer"]) == 4 and pruning["intermediate_sizes"] == [48, 48]
    params = pruning["parameters"]
    assert params["after"] < params["before"] and params["kept"] == pytest.approx(params["after"] / params["before"])
    assert record.train_summary["steps"] == 3
    from tasks.text_classification.predict import load_model

    model, _ = load_model(store, record)
    assert count_parameters(model) == params["after"]
    # its default suite ran, and the leaderboard shows it like any variant
    assert made["run"] in {r["id"] for r in store.runs(record.id)}
    rows = {row["variant"]: row for row in store.leaderboard()}
    assert 0 <= rows[record.id]["accuracy"] <= 1 and rows[record.id]["method"] == "full"
    # engines build from it and match its own torch model
    for backend in ("torch", "onnxruntime"):
        if backend == "onnxruntime":
            pytest.importorskip("onnxruntime")
        engine = store.get_engine(build_engine(store, record.id, backend, "fp32", log=lambda *a: None,
                                               budget_s=0.05))
        assert engine.parity["passed"] and engine.parity["max_abs_logit_diff"] < 1e-4, backend
    shown = main(["--home", str(store.root), "show", record.id])
    assert shown == 0 and f"parent      {parent_id}" in capsys.readouterr().out


def test_bad_prune_requests_exit_2_with_one_line_and_store_nothing(parent, capsys):
    store, parent_id = parent
    before = [v.id for v in store.list_variants()]
    for args, expected in [
        (["--heads", "1"], "not a share in [0, 1)"),
        (["--ffn=-0.2"], "not a share in [0, 1)"),
        (["--heads", "0.9"], "leaving a layer with none"),
        (["--alpha", "2"], "must be in [0, 1]"),
    ]:
        try:
            code = main(["--home", str(store.root), "prune", parent_id, "--recover-steps", "0", *args])
        except SystemExit as exc:   # argparse's own check of a value
            code = exc.code
        err = capsys.readouterr().err
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (args, err)
    assert [v.id for v in store.list_variants()] == before
    assert not any(store.staging_dir.iterdir())


def test_an_adapter_only_variant_is_refused_with_what_to_do(parent):
    from tasks.text_classification.recover import check_parent

    store, parent_id = parent
    adapter_only = dataclasses.replace(store.get_variant(parent_id), peft_method="prompt_tuning", has_merged=False)
    with pytest.raises(UserError, match="prompt_tuning adapter without merged weights.*cannot be merged"):
        check_parent(store, adapter_only)
    lora_unmerged = dataclasses.replace(store.get_variant(parent_id), peft_method="lora", has_merged=False)
    with pytest.raises(UserError, match=r"retrain it with `peft: \{merge: true\}`"):
        check_parent(store, lora_unmerged)
    other_task = dataclasses.replace(store.get_variant(parent_id), task="text-generation")
    with pytest.raises(UserError, match="prunes text-classification"):
        check_parent(store, other_task)


def test_magnitude_without_recovery_stores_the_pruned_model_as_is(parent, capsys):
    store, parent_id = parent
    code = main(["--home", str(store.root), "prune", parent_id, "--method", "magnitude", "--heads", "0.5",
                 "--ffn", "0", "--head-scope", "layer", "--recover-steps", "0", "--no-eval", "--json"])
    assert code == 0
    record = store.get_variant(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["variant"])
    assert record.train_summary["steps"] == 0 and record.hyperparameters == {}
    assert record.train_summary["pruning"]["intermediate_sizes"] == [64, 64]
    assert record.train_summary["pruning"]["heads_per_layer"] == [2, 2] and "-layer-" in record.id
    assert not store.runs(record.id)


def test_core_loaders_find_the_pruned_architecture_by_model_type(tmp_path):
    """The torch engine and `evalhub pull` load through hub.plugins.register_model_type, never importing the task."""
    from hub.plugins import register_model_type
    from hub.registries import MODEL_TYPES

    assert "evalhub-pruned-bert" in MODEL_TYPES
    register_model_type(tmp_path)   # no config.json: nothing to do, the loader reports it
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    register_model_type(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "evalhub-pruned-bert"}')
    register_model_type(tmp_path)


def test_card_snippet_of_a_pruned_variant_imports_its_config_class():
    from types import SimpleNamespace

    from hub.registries import TASKS

    task = TASKS.get("text-classification")
    pruned = SimpleNamespace(peft_method="none", labels=["a", "b"], train_summary={"pruning": {"heads": 0.3}})
    plain = SimpleNamespace(peft_method="none", labels=["a", "b"], train_summary={})
    assert "import tasks.text_classification.pruned_bert" in task.usage_code(pruned, "org/x", None)
    assert "pruned_bert" not in task.usage_code(plain, "org/x", None)
