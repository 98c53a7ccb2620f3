"""The `explain` evaluator: attributions, faithfulness and sanity checks.

A scripted predictor keyed on one word makes the model-agnostic methods and the ERASER
scores hand-checkable; the tiny random BERT of the `tiny_model_dir` fixture checks the
gradient methods against captum's own calls.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evaluators.explain import ExplainEvaluator
from evaluators.explain.faithfulness import comprehensiveness_sufficiency, kendall_tau, top_k_mask
from evaluators.explain.gradients import encode, gradient_attributions, logits_forward, token_attributions
from evaluators.explain.perturbation import kernel_shap, leave_one_out
from evaluators.explain.sanity import completeness_gap, randomization_rho, randomized_copy
from evaluators.explain.words import fit_words, to_words
from hub.errors import UserError
from hub.predictor import PredictorBase

KEY = "goal"
TEXTS = ["the team scored a late goal today", "goal", "a goal after the break", "coach says goal was fine"]


class KeyPredictor(PredictorBase):
    """p(class 1) = 1 iff the word KEY is in the text, else 0: all the evidence is one word."""

    labels = ["other", "key"]
    engine = "scripted"

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, texts):
        self.calls += 1
        hit = np.array([KEY in text.split() for text in texts], dtype=np.float32)
        return np.stack([1.0 - hit, hit], axis=1).reshape(len(texts), 2)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """A TorchPredictor over the 3-class tiny BERT, trained a few steps on the topic sentences.

    Untrained, its logits barely depend on the input (f(x) - f(baseline) ~ 1e-5, float noise),
    which would make completeness and randomization checks vacuous.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.conftest import TOPICS, make_texts
    from tasks.text_classification.predict import TorchPredictor

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=3,
                                                               ignore_mismatched_sizes=True)  # saved with 2
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows, labels = make_texts(96, seed=5), list(TOPICS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(12):
        batch = rows[(step * 16) % len(rows):][:16]
        enc = tokenizer([text for text, _ in batch], padding=True, return_tensors="pt")
        model(**enc, labels=torch.tensor([labels.index(label) for _, label in batch])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return TorchPredictor(model, tokenizer, labels, max_length=32)


def key_inputs():
    words = [t.split() for t in TEXTS]
    base = KeyPredictor().predict_proba(TEXTS)
    return words, base.argmax(axis=1), base


# --- model-agnostic methods and ERASER scores on the scripted predictor -------------------------


def test_occlusion_puts_all_attribution_on_the_key_word():
    words, targets, base = key_inputs()
    for w, attr in zip(words, leave_one_out(KeyPredictor(), words, targets, base)):
        expected = np.array([1.0 if word == KEY else 0.0 for word in w])
        np.testing.assert_array_equal(attr, expected)


def test_kernel_shap_puts_all_attribution_on_the_key_word():
    words, targets, base = key_inputs()
    predictor = KeyPredictor()
    attrs = kernel_shap(predictor, words, targets, base, n_samples=60, seed=0)
    for w, attr in zip(words, attrs):
        expected = np.array([1.0 if word == KEY else 0.0 for word in w])
        np.testing.assert_allclose(attr, expected, atol=1e-3)
    assert predictor.calls == 1 + len([w for w in words if len(w) > 1])   # "" for the one-word text, one per example


def test_kernel_shap_is_seeded():
    words, targets, base = key_inputs()
    torch.manual_seed(123)
    a = kernel_shap(KeyPredictor(), words, targets, base, n_samples=20, seed=3)
    b = kernel_shap(KeyPredictor(), words, targets, base, n_samples=20, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_comprehensiveness_is_full_and_sufficiency_zero_for_the_key_word():
    words, targets, base = key_inputs()
    attrs = leave_one_out(KeyPredictor(), words, targets, base)
    comp, suff = comprehensiveness_sufficiency(KeyPredictor(), words, attrs, targets, base)
    np.testing.assert_array_equal(comp, np.ones(len(words)))      # removing the top word drops p from 1 to 0
    np.testing.assert_array_equal(suff, np.zeros(len(words)))     # keeping only it keeps p at 1


def test_comprehensiveness_of_a_wrong_ranking_is_zero():
    words, targets, base = key_inputs()
    wrong = [np.array([-1.0 if word == KEY else 1.0 for word in w]) for w in words]
    comp, suff = comprehensiveness_sufficiency(KeyPredictor(), words, wrong, targets, base, [0.2])
    # the 7-word text: top ceil(0.2 * 7) = 2 words exclude the key, so removing them changes nothing
    assert comp[0] == 0.0 and suff[0] == 1.0


def test_top_k_takes_the_ceiling_and_breaks_ties_by_position():
    np.testing.assert_array_equal(top_k_mask(np.array([0.0, 3.0, 3.0, 1.0]), 0.3), [False, True, True, False])
    np.testing.assert_array_equal(top_k_mask(np.array([0.0, 3.0, 3.0, 1.0]), 0.1), [False, True, False, False])


def test_kendall_tau_of_identical_rankings_is_one():
    a = np.array([0.3, -0.1, 2.0, 0.7])
    assert kendall_tau(a, a * 5 + 1) == pytest.approx(1.0)
    assert kendall_tau(a, -a) == pytest.approx(-1.0)
    assert np.isnan(kendall_tau(np.array([1.0]), np.array([2.0])))


def test_evaluator_on_a_predictions_only_predictor_drops_gradient_methods(caplog):
    refs = [1, 1, 1, 1]
    with caplog.at_level(logging.INFO, logger="evaluators.explain.evaluator"):
        out = ExplainEvaluator().evaluate(KeyPredictor(), TEXTS, refs, KeyPredictor.labels, seed=0,
                                          shap_samples=40, bootstrap=0)
    assert "dropping ig, grad_x_input" in caplog.text
    metrics = {m.name: m for m in out.metrics}
    assert set(metrics) == {"comprehensiveness/occlusion", "sufficiency/occlusion", "comprehensiveness/kernel_shap",
                            "sufficiency/kernel_shap", "tau_loo/kernel_shap"}
    assert metrics["comprehensiveness/occlusion"].value == 1.0
    assert metrics["sufficiency/kernel_shap"].value == pytest.approx(0.0)
    assert not metrics["sufficiency/occlusion"].higher_is_better
    record = out.records[0]
    assert record["prediction"] == "key" and record["words"] == TEXTS[0].split()
    assert record["attributions"]["occlusion"][record["words"].index(KEY)] == 1.0


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="did you mean 'kernel_shap'"):
        ExplainEvaluator().evaluate(KeyPredictor(), TEXTS, [1] * 4, KeyPredictor.labels, methods=["kernel_shp"])
    with pytest.raises(UserError, match="unknown key 'n_step'"):
        ExplainEvaluator().evaluate(KeyPredictor(), TEXTS, [1] * 4, KeyPredictor.labels, n_step=3)
    with pytest.raises(UserError, match="precision must be one of fp32, bf16, got 'fp16'"):
        ExplainEvaluator().evaluate(KeyPredictor(), TEXTS, [1] * 4, KeyPredictor.labels, precision="fp16")


# --- words ------------------------------------------------------------------------------------


def test_words_are_cut_to_the_model_window(tiny):
    long_text = " ".join(["the match went on"] * 20)
    (cut,) = fit_words([long_text], tiny.tokenizer, 12)
    assert 0 < len(cut) < len(long_text.split())
    assert len(tiny.tokenizer(" ".join(cut))["input_ids"]) <= 12
    assert fit_words(["a short one"], tiny.tokenizer, 12) == [["a", "short", "one"]]


def test_token_attributions_sum_onto_their_words(tiny):
    words = [["goalscorer", "the"]]      # the first word splits into word pieces: goal ##s ##c ##ore ##r
    enc = encode(tiny.tokenizer, words, 32)
    ids = enc.token_words[0]
    assert (ids == 0).sum() > 1 and (ids == 1).sum() == 1 and ids[0] == -1 and ids[-1] == -1
    np.testing.assert_allclose(to_words(np.arange(len(ids), dtype=float), ids, 2),
                               [np.arange(len(ids))[ids == 0].sum(), np.arange(len(ids))[ids == 1].sum()])


# --- gradient methods on the tiny model -------------------------------------------------------


def test_ig_matches_captum_layer_integrated_gradients(tiny):
    from captum.attr import LayerIntegratedGradients

    words = [t.split() for t in TEXTS]
    targets = [0, 2, 1, 2]
    enc = encode(tiny.tokenizer, words, 32)
    special = torch.tensor([[t in tiny.tokenizer.all_special_ids for t in row] for row in enc.input_ids.tolist()])
    baseline = torch.where(special, enc.input_ids, torch.full_like(enc.input_ids, tiny.tokenizer.pad_token_id))

    def forward(input_ids, attention_mask):
        return tiny.model(input_ids=input_ids, attention_mask=attention_mask).logits

    expected = LayerIntegratedGradients(forward, tiny.model.bert.embeddings.word_embeddings).attribute(
        enc.input_ids, baselines=baseline, target=torch.tensor(targets),
        additional_forward_args=(enc.attention_mask,), n_steps=16).sum(-1)
    ours = token_attributions(tiny.model, enc, torch.tensor(targets), "ig", n_steps=16, internal_batch_size=20)
    torch.testing.assert_close(ours, expected.float(), rtol=1e-4, atol=1e-6)
    word_attrs, _ = gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "ig", n_steps=16)
    for row, ids, w, attr in zip(expected, enc.token_words, words, word_attrs):
        np.testing.assert_allclose(attr, to_words(row.detach().numpy(), ids, len(w)), rtol=1e-4, atol=1e-6)


def test_bf16_precision_stays_close_to_fp32_and_rejects_unknown_names(tiny):
    from tests.conftest import make_texts

    words = [text.split() for text, _ in make_texts(6, seed=3)]
    targets = tiny.predict_proba([" ".join(w) for w in words]).argmax(axis=1)
    fp32, terms32 = gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "ig", n_steps=16)
    bf16, terms16 = gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "ig", n_steps=16,
                                          precision="bf16")
    scale = max(np.abs(a).max() for a in fp32)
    worst = max(np.abs(a - b).max() for a, b in zip(fp32, bf16))
    assert 0 < worst < 0.05 * scale          # bf16 really ran (not bit-identical), and stays close
    np.testing.assert_allclose(terms16[:, 1], terms32[:, 1], atol=0.05 * np.abs(terms32[:, 1]).max())
    assert torch.is_autocast_enabled("cpu") is False       # the autocast region ends with the call
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "ig", precision="fp8")


def test_grad_x_input_matches_gradient_times_embedding(tiny):
    words, targets = [TEXTS[0].split()], torch.tensor([1])
    enc = encode(tiny.tokenizer, words, 32)
    emb = tiny.model.get_input_embeddings()(enc.input_ids).detach().requires_grad_(True)
    logits = tiny.model(inputs_embeds=emb + 0, attention_mask=enc.attention_mask).logits
    (grad,) = torch.autograd.grad(logits[0, 1], emb)
    ours = token_attributions(tiny.model, enc, targets, "grad_x_input")
    torch.testing.assert_close(ours, (grad * emb).sum(-1).detach(), rtol=1e-4, atol=1e-6)
    assert logits_forward(tiny.model)(enc.input_ids, enc.attention_mask).shape == (1, 3)


def test_ig_completeness_gap_is_small_with_enough_steps(tiny):
    from tests.conftest import make_texts

    words = [text.split() for text, _ in make_texts(12, seed=11)]
    targets = tiny.predict_proba([" ".join(w) for w in words]).argmax(axis=1)
    gaps = {}
    for n_steps in (1, 32):
        _, terms = gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "ig", n_steps=n_steps)
        moving = np.abs(terms[:, 1]) > 1e-2     # where the baseline really moves the logit
        assert moving.sum() >= 4
        gaps[n_steps] = completeness_gap(terms[moving]).mean()
    assert gaps[32] < 1e-2 and gaps[1] > 10 * gaps[32]   # Gauss-Legendre converges fast


def test_randomization_test_returns_correlations(tiny):
    words = [t.split() for t in TEXTS]
    targets = [0, 1, 2, 0]
    before = tiny.model.classifier.weight.clone()
    clone = randomized_copy(tiny.model, seed=0)
    assert torch.equal(tiny.model.classifier.weight, before)
    assert not torch.equal(clone.classifier.weight, before)
    real, _ = gradient_attributions(tiny.model, tiny.tokenizer, 32, words, targets, "grad_x_input")
    rand, _ = gradient_attributions(clone, tiny.tokenizer, 32, words, targets, "grad_x_input")
    rho = randomization_rho(real, rand)
    finite = rho[np.isfinite(rho)]
    assert len(finite) >= 3 and np.all((finite >= -1) & (finite <= 1))
    # magnitudes: the same words ranked first with their signs flipped is not a pass
    flipped = randomization_rho([np.array([0.5, -2.0, 3.0])], [np.array([-0.5, 2.0, -3.0])])
    assert flipped.tolist() == [pytest.approx(1.0)]


# --- end to end -------------------------------------------------------------------------------


def test_evaluator_end_to_end_on_the_tiny_model(tiny):
    from tests.conftest import make_texts

    rows = make_texts(12, seed=3)
    texts, refs = [t for t, _ in rows], [tiny.labels.index(label) for _, label in rows]
    out = ExplainEvaluator().evaluate(tiny, texts, refs, tiny.labels, seed=1, max_examples=6, n_steps=8,
                                      shap_samples=24, bootstrap=50)
    names = {m.name for m in out.metrics}
    expected = {f"{score}/{m}" for score in ("comprehensiveness", "sufficiency")
                for m in ("ig", "grad_x_input", "occlusion", "kernel_shap")}
    expected |= {f"tau_loo/{m}" for m in ("ig", "grad_x_input", "kernel_shap")}
    expected |= {"ig_completeness_gap", "randomization_rho/ig", "randomization_rho/grad_x_input"}
    assert names == expected
    for m in out.metrics:
        assert np.isfinite(m.value)
        assert m.higher_is_better == (m.name.split("/")[0] in ("comprehensiveness", "tau_loo"))
    assert len(out.records) == 6 and out.predictions == []
    record = out.records[0]
    assert set(record["attributions"]) == {"ig", "grad_x_input", "occlusion", "kernel_shap"}
    assert all(len(a) == len(record["words"]) for a in record["attributions"].values())
    assert record["prediction"] in tiny.labels and record["label"] in tiny.labels


def test_the_precision_option_reaches_the_gradient_methods(tiny):
    def ig(precision):
        out = ExplainEvaluator().evaluate(tiny, TEXTS, [0] * 4, tiny.labels, methods=["ig"], n_steps=8,
                                          randomization=False, bootstrap=0, precision=precision)
        return np.concatenate([r["attributions"]["ig"] for r in out.records])

    fp32, bf16 = ig("fp32"), ig("bf16")
    assert not np.array_equal(fp32, bf16)
    np.testing.assert_allclose(bf16, fp32, atol=0.05 * np.abs(fp32).max())


def test_an_engine_gets_gradient_methods_from_the_torch_twin(tiny):
    class Engine(PredictorBase):
        labels, engine = tiny.labels, "onnxruntime-fp32"
        tokenizer, max_length = tiny.tokenizer, tiny.max_length

        def predict_proba(self, texts):
            return tiny.predict_proba(texts)

    lines = []
    context = SimpleNamespace(log=lines.append, torch_predictor=lambda: tiny, variant=SimpleNamespace(id="v1"))
    out = ExplainEvaluator().evaluate(Engine(), TEXTS, [0] * 4, tiny.labels, context=context,
                                      methods=["grad_x_input", "occlusion"], randomization=False, bootstrap=0)
    assert {m.name for m in out.metrics} == {"comprehensiveness/grad_x_input", "sufficiency/grad_x_input",
                                             "tau_loo/grad_x_input", "comprehensiveness/occlusion",
                                             "sufficiency/occlusion"}
    assert any("torch model of v1" in line for line in lines)


def test_explain_suite_names_both_evaluators():
    from evaluators.base import Suite
    from hub.suites import suite_path
    from hub.config import from_dict, read_yaml

    suite = from_dict(Suite, read_yaml(suite_path("explain")), "explain.yaml")
    assert suite.name == "explain" and suite.steps() == [("classification", {}), ("explain", {})]


def test_demo_suite_is_full_on_smaller_samples():
    from evaluators.base import load_suite
    from evaluators.explain.evaluator import ExplainOptions
    from evaluators.robustness.evaluator import RobustnessOptions
    from hub.config import from_dict

    full, demo = load_suite("full").steps(), load_suite("demo").steps()
    assert [name for name, _ in demo] == [name for name, _ in full]      # every scorecard, none left out
    explain = from_dict(ExplainOptions, dict(demo)["explain"], "demo")
    assert explain.max_examples == 10 and set(explain.methods) == {"ig", "occlusion", "kernel_shap"}
    robustness = from_dict(RobustnessOptions, dict(demo)["robustness"], "demo")
    assert robustness.max_examples == 100 and robustness.attack and robustness.query_budget == 25
