"""The text-generation metric modules, scorecard and evaluator, checked against rouge-score and sacrebleu."""

from __future__ import annotations

import doctest
import random

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from evaluators.generation import GenerationEvaluator, GenerationOptions, generation_metrics
from evaluators.metrics import load_metric
from hub.config import from_dict
from hub.errors import UserError

WORDS = "the cat sat on a mat while dog and bird flew over house tree near river".split()


def make_texts(seed: int, n: int = 60):
    rng = random.Random(seed)
    refs = [" ".join(rng.choices(WORDS, k=rng.randint(5, 20))) for _ in range(n)]
    preds = [" ".join(w if rng.random() < 0.6 else rng.choice(WORDS) for w in r.split()) for r in refs]
    preds[0] = refs[0]          # one exact match
    return refs, preds


@pytest.fixture(params=[0, 1], ids=lambda s: f"seed{s}")
def texts(request):
    return make_texts(request.param)


def by_name(results):
    return {m.name: m for m in results}


@pytest.mark.parametrize("name", ["rouge", "chrf", "bleu", "exact_match"])
def test_doctests(name):
    import importlib.util

    from evaluators.metrics import METRICS_DIR

    spec = importlib.util.spec_from_file_location(name, METRICS_DIR / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    finder = doctest.DocTestFinder()
    tests = [t for t in finder.find(module._KWARGS_DESCRIPTION, name, globs={}) if t.examples]
    assert tests
    for t in tests:
        assert doctest.DocTestRunner().run(t).failed == 0


def test_rouge_module_matches_rouge_score(texts):
    refs, preds = texts
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=stem)
        expected = [scorer.score(r, p) for r, p in zip(refs, preds)]
        got = load_metric("rouge").compute(references=refs, predictions=preds, use_stemmer=stem)
        lists = load_metric("rouge").compute(references=refs, predictions=preds, use_stemmer=stem,
                                             use_aggregator=False)
        for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            per = [e[t].fmeasure for e in expected]
            assert lists[t] == pytest.approx(per)
            assert got[t] == pytest.approx(np.mean(per))
    with pytest.raises(ValueError):
        load_metric("rouge").compute(references=refs, predictions=preds, rouge_types=["rouge9"])


def test_chrf_and_bleu_modules_match_sacrebleu(texts):
    refs, preds = texts
    chrf = load_metric("chrf").compute(references=refs, predictions=preds)
    assert chrf["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score / 100)
    plus = load_metric("chrf").compute(references=refs, predictions=preds, word_order=2, char_order=4)
    assert plus["chrf"] == pytest.approx(sacrebleu.corpus_chrf(preds, [refs], char_order=4, word_order=2).score / 100)
    assert plus["chrf"] != pytest.approx(chrf["chrf"])
    bleu = load_metric("bleu").compute(references=refs, predictions=preds)
    lib = sacrebleu.corpus_bleu(preds, [refs])
    assert bleu["bleu"] == pytest.approx(lib.score / 100)
    assert bleu["precisions"] == pytest.approx([p / 100 for p in lib.precisions])
    assert bleu["brevity_penalty"] == pytest.approx(lib.bp)


def test_exact_match_normalisation():
    em = load_metric("exact_match")
    preds, refs = ["  Paris,  France\n", "ROME", "Milan!"], ["Paris, France", "rome", "milan"]
    assert em.compute(predictions=preds, references=refs)["exact_match"] == pytest.approx(1 / 3)
    assert em.compute(predictions=preds, references=refs, ignore_case=True)["exact_match"] == pytest.approx(2 / 3)
    assert em.compute(predictions=preds, references=refs, ignore_case=True,
                      ignore_punctuation=True)["exact_match"] == 1.0
    assert em.compute(predictions=preds, references=refs, strip=False, collapse_whitespace=False,
                      use_aggregator=False)["exact_match"] == [0.0, 0.0, 0.0]


def test_generation_metrics_equal_the_libraries(texts):
    refs, preds = texts
    got = by_name(generation_metrics(refs, preds, bootstrap=200))
    assert list(got) == ["rouge1", "rouge2", "rougeL", "chrf", "bleu", "exact_match"]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    scores = [scorer.score(r, p) for r, p in zip(refs, preds)]
    for t in ("rouge1", "rouge2", "rougeL"):
        assert got[t].value == pytest.approx(np.mean([s[t].fmeasure for s in scores]))
    assert got["chrf"].value == pytest.approx(sacrebleu.corpus_chrf(preds, [refs]).score / 100)
    assert got["bleu"].value == pytest.approx(sacrebleu.corpus_bleu(preds, [refs]).score / 100)
    assert got["exact_match"].value == pytest.approx(np.mean([p == r for p, r in zip(preds, refs)]))
    for m in got.values():
        assert m.higher_is_better
        assert 0.0 <= m.ci_low <= m.value <= m.ci_high <= 1.0, m
    assert got["chrf"].ci_low < got["chrf"].ci_high


def test_cis_are_seeded_and_deterministic(texts):
    refs, preds = texts
    a = generation_metrics(refs, preds, bootstrap=300, seed=3)
    assert a == generation_metrics(refs, preds, bootstrap=300, seed=3)
    b = by_name(generation_metrics(refs, preds, bootstrap=300, seed=4))
    assert by_name(a)["chrf"].ci_low != b["chrf"].ci_low
    narrow = by_name(generation_metrics(refs, preds, bootstrap=300, seed=3, confidence=0.5))
    assert narrow["chrf"].ci_high - narrow["chrf"].ci_low < by_name(a)["chrf"].ci_high - by_name(a)["chrf"].ci_low
    none = generation_metrics(refs, preds, bootstrap=0)
    assert all(m.ci_low is None and m.ci_high is None for m in none)


def test_corpus_ci_matches_resampling_sacrebleu_by_hand():
    refs, preds = make_texts(5, n=12)
    ci = by_name(generation_metrics(refs, preds, bootstrap=50, seed=7))["chrf"]
    rng = np.random.default_rng(7)
    idx = rng.integers(0, len(refs), size=(50, len(refs)))
    scores = [sacrebleu.corpus_chrf([preds[i] for i in row], [[refs[i] for i in row]]).score / 100 for row in idx]
    assert (ci.ci_low, ci.ci_high) == pytest.approx(tuple(np.quantile(scores, [0.025, 0.975])))


def test_empty_strings_score_zero_without_crashing():
    refs = ["the cat sat on the mat", "a dog", ""]
    got = by_name(generation_metrics(refs, ["", "", ""], bootstrap=50))
    for name in ("rouge1", "rouge2", "rougeL", "chrf", "bleu"):
        assert got[name].value == 0.0
    assert got["exact_match"].value == pytest.approx(1 / 3)   # "" == ""
    got = by_name(generation_metrics(["", ""], ["some words", "more"], bootstrap=50))
    assert got["rouge1"].value == 0.0 and got["chrf"].value == 0.0 and got["bleu"].value == 0.0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="length mismatch"):
        generation_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no examples"):
        generation_metrics([], [])
    with pytest.raises(ValueError, match="must be a string"):
        generation_metrics(["a"], [None])
    with pytest.raises(ValueError):
        generation_metrics(["a"], ["a"], confidence=1.5)


def test_corpus_bootstrap_is_fast_enough():
    import time

    refs, preds = make_texts(2, n=100)
    start = time.perf_counter()
    generation_metrics(refs, preds, bootstrap=1000)
    # generous bound, not a benchmark: guards against a per-resample re-tokenisation creeping in
    assert time.perf_counter() - start < 10


class FakePredictor:
    """Answers each prompt with a fixed string and records how it was called."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def generate(self, prompts, *, max_new_tokens, do_sample, temperature, top_p, seed):
        self.calls.append({"n": len(prompts), "max_new_tokens": max_new_tokens, "do_sample": do_sample,
                           "temperature": temperature, "top_p": top_p, "seed": seed})
        return list(self.outputs[: len(prompts)])


class FakePerplexityPredictor(FakePredictor):
    def perplexity(self, prompts, references):
        return [10.0 + i for i in range(len(prompts))]


PROMPTS = ["How do I reset my password?",
           [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "My screen is black."}],
           "Where is the settings menu?"]
REFERENCES = ["Click forgot password on the login page.", "Check that the monitor is plugged in.",
              "It is under the gear icon."]
OUTPUTS = ["Click forgot password on the login page.", "Restart the computer.", ""]


def test_evaluator_end_to_end():
    predictor = FakePredictor(OUTPUTS)
    out = GenerationEvaluator().evaluate(predictor, PROMPTS, REFERENCES, [], seed=1, bootstrap=100,
                                         max_new_tokens=32)
    assert predictor.calls == [{"n": 3, "max_new_tokens": 32, "do_sample": False, "temperature": 1.0,
                                "top_p": 1.0, "seed": 1}]
    metrics = by_name(out.metrics)
    assert "perplexity" not in metrics
    assert metrics == by_name(generation_metrics(REFERENCES, OUTPUTS, bootstrap=100, seed=1))
    assert out.predictions == []
    assert [r["idx"] for r in out.records] == [0, 1, 2]
    assert out.records[1]["prompt"] == PROMPTS[1]         # messages kept as given
    assert [r["reference"] for r in out.records] == REFERENCES
    assert [r["output"] for r in out.records] == OUTPUTS
    assert set(out.records[0]) == {"idx", "prompt", "reference", "output", "rougeL", "chrf"}
    assert out.records[0]["rougeL"] == 1.0 and out.records[0]["chrf"] == 1.0
    assert out.records[2]["rougeL"] == 0.0 and out.records[2]["chrf"] == 0.0
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert out.records[1]["rougeL"] == pytest.approx(scorer.score(REFERENCES[1], OUTPUTS[1])["rougeL"].fmeasure,
                                                     abs=1e-6)
    assert out.records[1]["chrf"] == pytest.approx(
        sacrebleu.sentence_chrf(OUTPUTS[1], [REFERENCES[1]]).score / 100, abs=1e-6)


def test_perplexity_only_when_the_predictor_has_it():
    out = GenerationEvaluator().evaluate(FakePerplexityPredictor(OUTPUTS), PROMPTS, REFERENCES, [], bootstrap=100)
    ppl = by_name(out.metrics)["perplexity"]
    assert ppl.value == pytest.approx(11.0) and not ppl.higher_is_better
    assert ppl.ci_low <= 11.0 <= ppl.ci_high
    off = GenerationEvaluator().evaluate(FakePerplexityPredictor(OUTPUTS), PROMPTS, REFERENCES, [],
                                         bootstrap=100, perplexity=False)
    assert "perplexity" not in by_name(off.metrics)


def test_evaluator_options_and_errors():
    assert GenerationEvaluator.name == "generation" and not GenerationEvaluator.needs_gradients
    assert GenerationOptions() == from_dict(GenerationOptions, {}, "x")
    with pytest.raises(UserError):
        GenerationEvaluator().evaluate(FakePredictor(OUTPUTS), PROMPTS, REFERENCES, [], max_tokens=5)
    with pytest.raises((UserError, ValueError)):
        GenerationEvaluator().evaluate(FakePredictor(OUTPUTS), PROMPTS, REFERENCES, [], top_p=0.0)
    with pytest.raises(UserError, match="no examples"):
        GenerationEvaluator().evaluate(FakePredictor(OUTPUTS), [], [], [])
    with pytest.raises(ValueError, match="returned 2 responses"):
        GenerationEvaluator().evaluate(FakePredictor(OUTPUTS[:2]), PROMPTS, REFERENCES, [])
