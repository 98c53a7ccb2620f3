"""The robustness scorecard: perturbations, WordNet synonyms, the greedy attack, the evaluator.

Scripted predictors whose right answers are known by construction stand in for models,
except in the end-to-end test on the tiny BERT. Tests that need WordNet run on an isolated
copy made from Debian's wordnet-base, and skip with the install command where it is missing.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch

from evaluators.robustness import words as w
from evaluators.robustness import wordnet as wn_mod
from evaluators.robustness.attack import MAX_SYNONYMS, greedy_attack
from evaluators.robustness.evaluator import RobustnessEvaluator, sample_indices
from evaluators.robustness.lexicon import ENTITY_KIND
from evaluators.robustness.perturb import PERTURBATIONS, perturb
from evaluators.robustness.scores import attack_metrics, perturbation_metrics
from hub.errors import UserError

requires_wordnet = pytest.mark.skipif(
    wn_mod._source_dir() is None,
    reason="WordNet data missing: apt-get install --no-install-recommends wordnet-base")


class KeywordPredictor:
    """Class 1 ("match") when ``keyword`` is one of the text's words, else class 0."""

    labels = ["other", "match"]
    engine = "scripted"

    def __init__(self, keyword: str, case_sensitive: bool = False) -> None:
        self.keyword, self.case_sensitive, self.calls, self.queries = keyword, case_sensitive, 0, 0

    def predict_proba(self, texts):
        self.calls += 1
        self.queries += len(texts)
        hit = [self.keyword in re.findall(r"\w+", t if self.case_sensitive else t.lower()) for t in texts]
        return np.array([[0.1, 0.9] if h else [0.9, 0.1] for h in hit]).reshape(-1, 2)


class UppercasePredictor:
    """Class 1 when the text has any upper-case letter: casing flips every lower-case text."""

    labels = ["lower", "upper"]
    engine = "scripted"

    def predict_proba(self, texts):
        return np.array([[0.2, 0.8] if any(c.isupper() for c in t) else [0.8, 0.2] for t in texts]).reshape(-1, 2)


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory):
    """WordNet set up from the system data into a fresh managed folder (exercises the copy)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVALHUB_NLTK_DATA", str(tmp_path_factory.mktemp("nltk_data")))
        yield wn_mod.get_wordnet()


LONG = " ".join(["the", "film", "price", "market", "movie", "quickly", "terrible", "song"] * 25)
MIXED = ("John said in London that I don't think it is not 2024 yet, and we're sure Paris "
         "will grow 15% while Mary can't stay. ") * 6


# --- perturbations -------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in PERTURBATIONS if n != "synonyms"]
                         + [pytest.param("synonyms", marks=requires_wordnet)])
def test_same_seed_same_text_other_seed_other_text(name, request):
    if name == "synonyms":
        request.getfixturevalue("wordnet")
    text = MIXED + " " + LONG
    first = perturb(name, text, 0.3, seed=1, key=7)
    assert first == perturb(name, text, 0.3, seed=1, key=7)
    assert first != text
    assert first != perturb(name, text, 0.3, seed=2, key=7)
    assert first != perturb(name, text, 0.3, seed=1, key=8)
    assert perturb(name, text, 0.0, seed=1) == text


def _share(name: str, text: str, out: str) -> float:
    """The share of eligible units the perturbation touched, measured from the output."""
    if name == "word_dropout":
        return 1 - len(out.split()) / len(text.split())
    if name == "whitespace":
        single = lambda t: len(re.findall(r"(?<=\S) (?=\S)", t))  # noqa: E731
        return 1 - single(out) / single(text)
    if name == "contractions":
        return out.count("do not") / text.count("don't")
    before, after = text.split(), out.split()
    assert len(before) == len(after)
    return sum(a != b for a, b in zip(before, after)) / len(before)


SEVERITY_TEXTS = {
    "char_noise": LONG, "casing": LONG, "punctuation": LONG, "whitespace": LONG, "word_dropout": LONG,
    "synonyms": " ".join(["film", "price", "movie", "quickly", "terrible", "song"] * 40),
    "entities": " ".join(["London", "John", "2004", "Paris", "Mary", "15"] * 40),
    "contractions": " ".join(["you", "don't", "know"] * 80),
}


@pytest.mark.parametrize("severity", [0.1, 0.4])
@pytest.mark.parametrize("name", [n for n in PERTURBATIONS if n != "synonyms"]
                         + [pytest.param("synonyms", marks=requires_wordnet)])
def test_each_perturbation_touches_the_severity_share(name, severity, request):
    if name == "synonyms":
        request.getfixturevalue("wordnet")
    text = SEVERITY_TEXTS[name]
    shares = [_share(name, text, perturb(name, text, severity, seed=s)) for s in range(3)]
    assert np.mean(shares) == pytest.approx(severity, abs=0.02), shares


def test_word_edits_keep_spacing_and_punctuation():
    parts = w.split("  Hello, (world)!  ")
    assert "".join(parts) == "  Hello, (world)!  "
    assert [w.pieces(parts[i]) for i in w.word_slots(parts)] == [("", "Hello", ","), ("(", "world", ")!")]
    assert w.match_case("London", "paris") == "Paris" and w.match_case("NASA", "esa") == "ESA"
    rng = random.Random(0)
    assert all(w.typo("market", rng) != "market" for _ in range(50))
    assert perturb("word_dropout", "one", 1.0, seed=0) == "one"


def test_contractions_and_entities_swap_the_right_things():
    assert perturb("contractions", "I don't know", 1.0, seed=0) == "I do not know"
    assert perturb("contractions", "It is late", 1.0, seed=0) == "It's late"
    out = perturb("entities", "John moved to London in 2004.", 1.0, seed=0).split()
    assert ENTITY_KIND[out[0]] == "person" and out[0] != "John"
    assert ENTITY_KIND[out[3]] == "city" and out[3] != "London"
    assert re.fullmatch(r"[1-9]\d{3}\.", out[5]) and out[5] != "2004."


# --- WordNet ---------------------------------------------------------------------------------

@requires_wordnet
def test_wordnet_synonyms_keep_the_part_of_speech(wordnet):
    cases = {"film": {"n"}, "price": {"n"}, "run": {"v"}, "quickly": {"r"}, "terrible": {"a", "s"}}
    for word, pos in cases.items():
        synonyms = wordnet.synonyms(word)
        assert synonyms, word
        assert wordnet.pos_of_synonyms(word) <= pos, word
        for synonym in synonyms:  # each synonym is itself a word of that POS
            assert {s.pos() for s in wordnet.reader.synsets(synonym)} & pos, (word, synonym)
    assert "movie" in wordnet.synonyms("film")
    assert "movies" in wordnet.synonyms("films")        # regular plurals carry over
    assert wordnet.synonyms("said") == []                # a verb form: no synonym keeps its tense
    assert wordnet.synonyms("the") == [] and wordnet.synonyms("in") == []


def test_lexnames_table_and_managed_copy(tmp_path, monkeypatch):
    lines = wn_mod.lexnames_text().splitlines()
    assert len(lines) == 45 and lines[0] == "00\tadj.all\t3" and lines[-1] == "44\tadj.ppl\t3"
    assert lines[3] == "03\tnoun.Tops\t1" and lines[29] == "29\tverb.body\t2" and lines[2] == "02\tadv.all\t4"
    source = tmp_path / "dict"
    source.mkdir()
    for name in wn_mod.REQUIRED:
        (source / name).write_text(f"fake {name}\n")
    monkeypatch.setattr(wn_mod, "SYSTEM_DIR", source)
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setenv("EVALHUB_NLTK_DATA", str(tmp_path / "data"))
    folder = wn_mod.install_wordnet()
    assert folder == tmp_path / "data" / "corpora" / "wordnet"
    assert (folder / "lexnames").read_text() == wn_mod.lexnames_text()
    assert (folder / "index.noun").read_text() == "fake index.noun\n"
    assert not any(p.is_symlink() for p in folder.iterdir())  # NLTK refuses symlinked data


def test_missing_wordnet_names_the_apt_command(tmp_path, monkeypatch):
    monkeypatch.setattr(wn_mod, "SYSTEM_DIR", tmp_path / "empty")
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setenv("EVALHUB_NLTK_DATA", str(tmp_path / "data"))
    with pytest.raises(UserError, match=re.escape("apt-get install --no-install-recommends wordnet-base")):
        wn_mod.get_wordnet()
    with pytest.raises(UserError, match="wordnet-base"):
        RobustnessEvaluator().evaluate(KeywordPredictor("good"), ["good"], [1], KeywordPredictor.labels,
                                       perturbations=["synonyms"], attack=False)

    # `evalhub demo` runs robustness on its engine: it says so before it trains anything
    from hub.demo import run_demo
    from hub.store import Store

    store = Store(tmp_path / "home")
    with pytest.raises(UserError, match="wordnet-base"):
        run_demo(store, serve=None, json_out=True)
    assert store.list_variants() == []


# --- attack ----------------------------------------------------------------------------------

TEXT = "the new film was good and the actors did well"


def test_keyword_predictor_flips_only_when_its_word_goes():
    predictor = KeywordPredictor("good")
    parts = w.split(TEXT)
    for slot in w.word_slots(parts):
        dropped = list(parts)
        w.delete_word(dropped, slot)
        flipped = predictor.predict_proba(["".join(dropped)]).argmax() == 0
        assert flipped == (parts[slot] == "good")


@pytest.mark.parametrize("use_wordnet", [False, pytest.param(True, marks=requires_wordnet)])
def test_attack_finds_the_keyword_within_budget(use_wordnet, request):
    wordnet = request.getfixturevalue("wordnet") if use_wordnet else None
    predictor = KeywordPredictor("good")
    (result,) = greedy_attack(predictor, [TEXT], [1], budget=50, seed=0, wordnet=wordnet)
    assert result.success and result.prediction == 0
    before, after = TEXT.split(), result.adversarial.split()
    assert [i for i, (a, b) in enumerate(zip(before, after)) if a != b] == [4]
    if use_wordnet:
        assert after[4] in wordnet.synonyms("good")   # synonyms are tried before typos
    content = sum(w.is_content_word(x) for x in before)
    assert result.queries <= content + MAX_SYNONYMS   # the keyword is ranked first
    assert result.queries == predictor.queries - 1     # the clean prediction is not counted
    assert result.changed_fraction == pytest.approx(1 / 10)


def test_attack_respects_the_budget_and_batches_examples():
    text = "film actors plot story music scenes cast " * 3 + "good"
    for budget in (1, 5, 12):
        (result,) = greedy_attack(KeywordPredictor("good"), [text], [1], budget=budget, seed=0)
        assert not result.success and result.queries == budget and result.adversarial != ""
    one, many = KeywordPredictor("good"), KeywordPredictor("good")
    greedy_attack(one, [TEXT], [1], budget=30, seed=0)
    results = greedy_attack(many, [TEXT] * 20, [1] * 20, budget=30, seed=0, keys=list(range(20)))
    assert many.calls == one.calls                      # one predictor call per round, for all examples
    assert all(r.success for r in results)


# --- scores and the evaluator -----------------------------------------------------------------

def test_metric_values_match_hand_computation():
    refs, clean = [0, 1, 1, 0, 1], [0, 1, 0, 0, 1]          # 4 clean-correct: 0, 1, 3, 4
    perturbed = {"a": [0, 0, 0, 1, 1], "b": [0, 1, 1, 0, 1]}
    got = {m.name: (m.value, m.higher_is_better) for m in perturbation_metrics(refs, clean, perturbed)}
    assert got == {"clean_accuracy": (0.8, True), "acc_a": (0.4, True), "acc_b": (1.0, True),
                   "flip_a": (0.5, False), "flip_b": (0.0, False), "flip_rate": (0.5, False)}
    # "a" edited examples 1-3 (clean-correct among them: 1 and 3, both flipped), "c" none, "b" all
    changed = {"a": [False, True, True, True, False], "b": [True] * 5, "c": [False] * 5}
    got = {m.name: m.value for m in perturbation_metrics(refs, clean, {**perturbed, "c": clean}, changed)}
    assert got["flip_a"] == 1.0 and got["flip_b"] == 0.0 and "flip_c" not in got
    assert got["acc_a"] == 0.4 and got["acc_c"] == 0.8 and got["flip_rate"] == 0.5   # over every example
    scores = attack_metrics([True, False, True], [0.1, 0.0, 0.3], [5, 50, 8])
    got = {m.name: (m.value, m.higher_is_better) for m in scores}
    assert got == {"attack_success_rate": (pytest.approx(2 / 3), False),
                   "words_changed": (pytest.approx(0.2), True), "queries_per_attack": (pytest.approx(21.0), True)}
    assert [m.name for m in attack_metrics([False], [0.0], [50])] == ["attack_success_rate", "queries_per_attack"]


def test_evaluator_metrics_and_flip_records_on_a_known_case():
    texts = ["a quiet day", "nothing to see here", "the cat sat", "more words in this one"]
    out = RobustnessEvaluator().evaluate(UppercasePredictor(), texts, [0, 0, 1, 1], UppercasePredictor.labels,
                                         seed=3, perturbations=["casing", "word_dropout"], attack=False, bootstrap=10)
    got = {m.name: m.value for m in out.metrics}
    assert got == {"clean_accuracy": 0.5, "acc_casing": 0.5, "acc_word_dropout": 0.5,
                   "flip_casing": 1.0, "flip_word_dropout": 0.0, "flip_rate": 1.0}
    flips = sorted(out.records, key=lambda r: r["idx"])
    assert [(r["idx"], r["perturbation"], r["before"], r["after"]) for r in flips] == [
        (0, "casing", "lower", "upper"), (1, "casing", "lower", "upper")]
    assert flips[0]["text"] == texts[0] and flips[0]["perturbed"] != texts[0]


def test_case_insensitive_predictor_never_flips_under_casing():
    texts = [f"{a} story about {b}" for a in ("a good", "a dull", "one more good")
             for b in ("cats", "GOOD dogs", "Rain")]
    refs = [int("good" in t.lower().split()) for t in texts]
    predictor = KeywordPredictor("good")
    out = RobustnessEvaluator().evaluate(predictor, texts, refs, predictor.labels, seed=0,
                                         perturbations=["casing"], severity=1.0, attack=False)
    got = {m.name: m.value for m in out.metrics}
    assert got["flip_casing"] == 0.0 and got["acc_casing"] == got["clean_accuracy"] == 1.0
    assert predictor.calls == 1 and out.records == []
    sensitive = KeywordPredictor("good", case_sensitive=True)
    out = RobustnessEvaluator().evaluate(sensitive, texts, refs, sensitive.labels, seed=0,
                                         perturbations=["casing"], severity=1.0, attack=False)
    assert {m.name: m.value for m in out.metrics}["flip_casing"] > 0


def test_options_are_checked():
    evaluate = RobustnessEvaluator().evaluate
    with pytest.raises(UserError, match="did you mean 'severity'"):
        evaluate(UppercasePredictor(), ["x"], [0], ["lower", "upper"], severty=0.3)
    with pytest.raises(UserError, match="did you mean 'casing'"):
        evaluate(UppercasePredictor(), ["x"], [0], ["lower", "upper"], perturbations=["casng"])
    with pytest.raises(UserError, match="severity must be in"):
        evaluate(UppercasePredictor(), ["x"], [0], ["lower", "upper"], severity=2)
    assert sample_indices(10, None, 0) == list(range(10))
    picked = sample_indices(1000, 20, 5)
    assert picked == sorted(picked) == sample_indices(1000, 20, 5) != sample_indices(1000, 20, 6)
    assert len(set(picked)) == 20


def test_suite_yaml_names_the_evaluators(monkeypatch):
    from evaluators.base import load_suite
    from hub.registries import EVALUATORS

    if "robustness" not in EVALUATORS.names():
        monkeypatch.setitem(EVALUATORS._entries, "robustness", "evaluators.robustness:RobustnessEvaluator")
    suite = load_suite("robustness")
    assert suite.name == "robustness" and suite.steps() == [("classification", {}), ("robustness", {})]
    assert EVALUATORS.get("robustness") is RobustnessEvaluator


@requires_wordnet
def test_end_to_end_on_the_tiny_model(tiny_model_dir, wordnet):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tasks.text_classification.predict import TorchPredictor
    from tests.conftest import TOPICS, make_texts

    labels = sorted(TOPICS)
    torch.manual_seed(0)   # the new classifier head is drawn from the global generator: the same whatever ran before
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=len(labels),
                                                               ignore_mismatched_sizes=True)
    predictor = TorchPredictor(model, AutoTokenizer.from_pretrained(tiny_model_dir), labels, max_length=32)
    rows = make_texts(40, seed=1)
    texts, refs = [t for t, _ in rows], [labels.index(y) for _, y in rows]
    run = lambda: RobustnessEvaluator().evaluate(predictor, texts, refs, labels, seed=11,  # noqa: E731
                                                 max_examples=16, query_budget=15, bootstrap=100)
    out = run()
    names = {m.name for m in out.metrics}
    assert {"clean_accuracy", "flip_rate", "attack_success_rate", "queries_per_attack"} <= names
    assert {f"acc_{p}" for p in PERTURBATIONS} <= names
    # make_texts writes no contraction and no expandable pair: nothing to flip, so no flip_contractions
    assert {f"flip_{p}" for p in PERTURBATIONS} - names == {"flip_contractions"}
    assert all(0.0 <= m.value <= 1.0 for m in out.metrics if m.name != "queries_per_attack")
    attacks = [r for r in out.records if r["type"] == "attack"]
    assert attacks and all(r["queries"] <= 15 for r in attacks)
    json.dumps(out.records)
    assert [(m.name, m.value) for m in run().metrics] == [(m.name, m.value) for m in out.metrics]


class WindowPredictor(KeywordPredictor):
    """A keyword predictor that reads only the first 12 tokens of each text, as a model would."""

    def __init__(self, tokenizer, keyword: str) -> None:
        super().__init__(keyword)
        self.tokenizer, self.max_length, self.seen = tokenizer, 12, []

    def predict_proba(self, texts):
        self.seen += list(texts)
        return super().predict_proba([self.tokenizer.decode(self.tokenizer(t, truncation=True, max_length=12)
                                                            ["input_ids"], skip_special_tokens=True) for t in texts])


def test_only_the_words_the_model_reads_are_perturbed(tiny):
    _, tokenizer = tiny
    head = "the match was a goal for the team today"
    texts = [f"{head} {'and then the season went on ' * 10}".strip(), "a short match report"]
    predictor = WindowPredictor(tokenizer, "match")
    out = RobustnessEvaluator().evaluate(predictor, texts, [1, 1], predictor.labels, seed=0,
                                         perturbations=["word_dropout"], severity=1.0, attack=False)
    assert all(len(tokenizer(t)["input_ids"]) <= 12 for t in predictor.seen)
    assert predictor.seen[0] != texts[0] and texts[0].startswith(predictor.seen[0])   # the window's words
    assert predictor.seen[1] == texts[1]
    flips = [r for r in out.records if r["type"] == "flip"]
    assert flips and all(len(tokenizer(r["text"])["input_ids"]) <= 12 for r in flips)
