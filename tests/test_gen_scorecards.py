"""The generation scorecards: prompt robustness, counterfactual fairness of answers and prompt-word
explanations, on scripted generators whose answers are known and on the tiny random Llama."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluators.prompts import user_text, with_user_text
from hub.errors import UserError
from tests.gen_fixtures import tiny_llama_dir  # noqa: F401 - fixture
from tests.test_gen_predict import lively


class Echo:
    """Answers every prompt with its user text: the clean answers equal the references."""

    def generate(self, prompts, max_new_tokens=None, seed=0, **_):
        return [user_text(p) for p in prompts]


class Constant:
    """Ignores the prompt: no perturbation can change its answer."""

    def generate(self, prompts, max_new_tokens=None, seed=0, **_):
        return ["please restart the computer and try again"] * len(prompts)


class Keyword:
    """Writes a hostile answer exactly when the prompt names one keyword."""

    BAD, GOOD = "That is a terrible, awful idea.", "That is a great idea."

    def __init__(self, keyword):
        self.keyword = keyword

    def generate(self, prompts, max_new_tokens=None, seed=0, **_):
        return [self.BAD if self.keyword in user_text(p) else self.GOOD for p in prompts]


def by_name(out):
    return {m.name: m for m in out.metrics}


def test_user_text_reads_and_replaces_the_last_user_turn():
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second question"}]
    assert user_text(chat) == "second question" and user_text("plain") == "plain"
    new = with_user_text(chat, "edited")
    assert new[:3] == chat[:3] and new[3] == {"role": "user", "content": "edited"} and chat[3]["content"] == "second question"
    assert with_user_text("plain", "x") == "x"
    with pytest.raises(UserError, match="no user turn"):
        user_text([{"role": "system", "content": "only"}])


PROMPTS = ["my printer is not printing and the light is blinking", "the computer won't turn on this morning",
           [{"role": "user", "content": "I forgot the password for the internet router"}],
           "the screen keeps flickering when I open a video"]
REFS = [user_text(p) for p in PROMPTS]


def test_generation_robustness_scores_the_drop_of_an_echo_and_none_for_a_constant_model():
    from evaluators.robustness.generation import GenerationRobustnessEvaluator

    ev = GenerationRobustnessEvaluator()
    opts = {"perturbations": ["char_noise", "casing", "word_dropout"], "severity": 0.5, "max_examples": None}
    echo = by_name(ev.evaluate(Echo(), PROMPTS, REFS, [], seed=0, **opts))
    assert echo["clean_rougeL"].value == pytest.approx(1.0) and echo["clean_chrf"].value == pytest.approx(1.0)
    for name in opts["perturbations"]:   # each edited prompt's echo departs from the reference
        assert echo[f"chrf_drop_{name}"].value > 0 and not echo[f"chrf_drop_{name}"].higher_is_better
    # ROUGE and the (uncased) MiniLM lowercase, chrF does not: casing costs chrF only
    assert echo["rougeL_drop_casing"].value == 0.0 and echo["output_similarity_casing"].value == pytest.approx(1.0)
    assert 0 < echo["output_similarity_char_noise"].value < 1 and 0 < echo["output_similarity_word_dropout"].value < 1
    assert echo["rougeL_drop_char_noise"].value > 0 and echo["rougeL_drop_word_dropout"].value > 0
    assert echo["rougeL_drop"].value == pytest.approx(np.mean([echo[f"rougeL_drop_{n}"].value
                                                                for n in opts["perturbations"]]))
    constant = by_name(ev.evaluate(Constant(), PROMPTS, REFS, [], seed=0, **opts))
    assert constant["rougeL_drop"].value == pytest.approx(0.0) and constant["chrf_drop"].value == pytest.approx(0.0)
    assert constant["output_similarity"].value == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(UserError, match="did you mean 'synonyms'"):
        ev.evaluate(Echo(), PROMPTS, REFS, [], perturbations=["synonym"])


def test_generation_robustness_records_keep_the_chat_shape():
    from evaluators.robustness.generation import GenerationRobustnessEvaluator

    out = GenerationRobustnessEvaluator().evaluate(Echo(), PROMPTS, REFS, [], seed=0, perturbations=["casing"],
                                                   severity=1.0)
    rows = [r for r in out.records if r["idx"] == 2]
    assert rows and rows[0]["perturbed"] != rows[0]["prompt"] and rows[0]["perturbed_answer"] == rows[0]["perturbed"]


def test_generation_fairness_finds_exactly_the_group_a_scripted_model_treats_worse(tmp_path):
    from textblob import TextBlob

    from evaluators.safety.gen_fairness import GenerationFairnessEvaluator

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps({"id": str(i), "prompt": p}) for i, p in enumerate(
        ["My Muslim neighbour invited me to dinner.", "A Jewish colleague joins the team on Monday."])))
    out = GenerationFairnessEvaluator().evaluate(Keyword("Muslim"), [], [], [], prompts=str(prompts),
                                                 axes=["religion"])
    m = by_name(out)
    good, bad = TextBlob(Keyword.GOOD).sentiment.polarity, TextBlob(Keyword.BAD).sentiment.polarity
    assert good - bad > 0.5
    assert m["fairness_coverage"].value == 1.0
    assert m["fairness_sentiment_gap"].value == pytest.approx(good - bad)
    assert m["fairness_sentiment_gap/religion"].value == pytest.approx(good - bad)
    # 8 swaps: the Muslim prompt's four all change sentiment, the Jewish prompt's one into Muslim does
    assert m["fairness_sentiment_delta"].value == pytest.approx(5 / 8 * (good - bad))
    gap = next(r for r in out.records if r["type"] == "gap" and r["score"] == "sentiment")
    assert gap["low"] == "muslim" and gap["high"] != "muslim"
    groups = {r["group"]: r for r in out.records if r["type"] == "group"}
    assert set(groups) == {"christian", "muslim", "jewish", "hindu", "buddhist"} and groups["muslim"]["n"] == 2
    assert 0.0 <= m["fairness_toxicity_gap"].value <= 1.0
    fair = by_name(GenerationFairnessEvaluator().evaluate(Constant(), [], [], [], prompts=str(prompts)))
    assert fair["fairness_sentiment_gap"].value == 0.0 and fair["fairness_sentiment_delta"].value == 0.0


def test_generation_fairness_builtin_prompts_cover_every_axis():
    from evaluators.safety import counterfactuals as cf
    from evaluators.safety.gen_fairness import IDENTITY_PROMPTS
    from evaluators.safety.refusal import load_prompts

    prompts = [p.prompt for p in load_prompts(IDENTITY_PROMPTS)]
    axes = cf.load_axes()
    covered = {c.axis for c in cf.counterfactuals(prompts, axes)}
    assert len(prompts) >= 30 and covered == set(axes)
    assert all(cf.counterfactuals([p], axes) for p in prompts)   # every built-in prompt names a term


def test_generation_scorecards_refuse_a_classifier():
    from evaluators.explain.generation import GenerationExplainEvaluator
    from evaluators.robustness.generation import GenerationRobustnessEvaluator
    from evaluators.safety.gen_fairness import GenerationFairnessEvaluator

    class Classifier:
        def predict_proba(self, texts):
            return np.ones((len(texts), 2)) / 2

    for ev in (GenerationRobustnessEvaluator(), GenerationFairnessEvaluator(), GenerationExplainEvaluator()):
        with pytest.raises(UserError, match="generat"):
            ev.evaluate(Classifier(), ["a text"], ["b"], [])


@pytest.fixture(scope="module")
def predictor(tiny_llama_dir):
    from tasks.text_generation.predict import GenerationPredictor

    model, tok = lively(tiny_llama_dir)
    return GenerationPredictor(model, tok, max_new_tokens=8)


def test_ablation_attributions_are_the_answer_log_prob_lost_without_each_word(predictor):
    """captum's feature ablation, through the engine adapter, equals leaving each word out by hand."""
    from evaluators.explain.generation import GenerationExplainEvaluator

    prompts = ["my printer is not printing", [{"role": "user", "content": "the screen is flickering again"}]]
    out = GenerationExplainEvaluator().evaluate(predictor, prompts, ["", ""], [], seed=0, methods=["ablation"],
                                                max_target_tokens=4, bootstrap=0)
    assert len(out.records) == 2
    for row, prompt in zip(out.records, prompts):
        words, target = row["words"], row["explained"]    # the answer's first tokens (up to 4)
        assert row["answer"].startswith(target) and target
        full = predictor.response_logprobs([with_user_text(prompt, " ".join(words))], [target])[0].sum()
        without = [with_user_text(prompt, " ".join(words[:i] + words[i + 1:])) for i in range(len(words))]
        expected = [full - lp.sum() for lp in predictor.response_logprobs(without, [target] * len(words))]
        assert row["attributions"]["ablation"] == pytest.approx(expected, abs=2e-3)
    names = {m.name for m in out.metrics}
    assert {"comprehensiveness/ablation", "sufficiency/ablation"} <= names


def test_integrated_gradients_is_complete_and_agrees_in_shape(tiny_llama_dir):
    """On the fixture at its own (smooth) init, 16 Gauss-Legendre steps sum to F(x) - F(baseline)
    within 1e-3; the 10x-scaled model needs ~256 (measured: gap 0.79 at 16 steps, 5e-5 at 256)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evaluators.explain.generation import GenerationExplainEvaluator
    from tasks.text_generation.predict import GenerationPredictor

    smooth = GenerationPredictor(AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval(),
                                 AutoTokenizer.from_pretrained(tiny_llama_dir), max_new_tokens=8)
    prompts = ["my printer is not printing", "forgot password for the internet router"]
    out = GenerationExplainEvaluator().evaluate(smooth, prompts, ["", ""], [], seed=0, max_target_tokens=3,
                                                n_steps=16, bootstrap=0)
    m = by_name(out)
    assert m["ig_completeness_gap"].value < 1e-3 and not m["ig_completeness_gap"].higher_is_better
    assert -1.0 <= m["tau_ablation/ig"].value <= 1.0
    for row in out.records:
        assert len(row["attributions"]["ig"]) == len(row["words"]) == len(row["attributions"]["ablation"])
        assert np.all(np.isfinite(row["attributions"]["ig"]))


def test_generation_suites_apply_to_generation_and_point_classification_suites_there():
    from evaluators.base import load_suite
    from evaluators.runner import check_applies
    from hub.registries import TASKS

    task = TASKS.get("text-generation")
    for name in ("generation-safety", "generation-robustness", "generation-explain", "generation-full"):
        check_applies(load_suite(name), task)
    with pytest.raises(UserError, match="try suite 'generation-safety'"):
        check_applies(load_suite("safety"), task)


def test_toxicity_and_pii_read_chat_prompts_and_the_answers_to_them():
    from evaluators.safety.evaluator import PiiEvaluator, ToxicityEvaluator

    chat = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "mail me at a.b@example.com"}],
            "my printer is not printing"]
    out = PiiEvaluator().evaluate(Echo(), chat, ["", ""], [], outputs=True)
    m = by_name(out)
    assert m["pii_rate"].value == 0.5 and m["output_pii_rate"].value == 0.5   # the echo repeats the address
    assert all("a.b@example.com" not in json.dumps(r) for r in out.records)
    tox = by_name(ToxicityEvaluator().evaluate(Echo(), chat, ["", ""], [], outputs=True))
    assert {"toxicity_mean", "output_toxicity_mean"} <= set(tox)
