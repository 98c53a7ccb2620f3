"""Constraints on the robustness edits: names, stopwords, POS in context, the sentence and word
checks and the words-changed cap, each on a scripted case whose answer is known.

A stub encoder scripts the similarities, so the checks are tested apart from MiniLM; one test
checks the real encoder against sentence-transformers' own pooling of the same model.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from evaluators.robustness import evaluator as ev_mod
from evaluators.robustness import words as w
from evaluators.robustness.attack import greedy_attack
from evaluators.robustness.constraints import (Constraints, SentenceEncoder, constrain_texts, pos_kept,
                                               slot_tags, substitutable_pos)
from evaluators.robustness.evaluator import RobustnessEvaluator
from evaluators.robustness.lexicon import STOPWORDS
from evaluators.robustness.perturb import perturb, synonym_candidates
from tests.test_robustness import KeywordPredictor, requires_wordnet, wordnet  # noqa: F401  (fixture)


class StubEncoder:
    """Scripted similarities: a window pair scores ``low`` when the edited window holds one of
    ``bad`` words, else ``high``; a word pair scores ``words.get(new word, high)``."""

    def __init__(self, bad=(), low=0.5, high=0.97, words=None):
        self.bad, self.low, self.high, self.words, self.calls = set(bad), low, high, words or {}, 0

    def similarity(self, pairs):
        self.calls += 1
        out = []
        for a, b in pairs:
            if " " not in b.strip() and " " not in a.strip():   # a word pair
                out.append(self.words.get(b, self.high))
            else:
                out.append(self.low if set(re.findall(r"\w+", b.lower())) & self.bad else self.high)
        return np.array(out)


NAMES = "Mr Bell said John Smith will take the top job in London, and his daughter was very happy about the film."


@requires_wordnet
def test_names_and_stopwords_are_never_substituted(wordnet):
    tokens = NAMES.split()
    keep = {i for i, t in enumerate(tokens) if w.pieces(t)[1] in {"Bell", "John", "Smith", "London"}
            or w.pieces(t)[1].lower() in STOPWORDS}
    changed = set()
    for seed in range(15):
        out = perturb("synonyms", NAMES, 1.0, seed=seed).split()
        assert len(out) == len(tokens)
        assert all(out[i] == tokens[i] for i in keep), out
        changed |= {i for i, (a, b) in enumerate(zip(tokens, out)) if a != b}
    assert changed and not changed & keep          # other words were substituted
    parts = w.split(NAMES)
    tags = slot_tags(parts)
    assert all(substitutable_pos(w.pieces(parts[i])[1], tags[i]) is None
               for i in w.word_slots(parts) if w.pieces(parts[i])[1] in {"Bell", "John", "the", "his"})


@requires_wordnet
def test_a_substitute_keeps_the_part_of_speech_it_has_in_context(wordnet):
    parts = w.split("They will run the company well")
    slot = w.word_slots(parts)[2]
    assert slot_tags(parts)[slot] == "VB"
    assert pos_kept(parts, slot, "operate", "v")
    assert not pos_kept(parts, slot, "quickly", "v")     # an adverb in a verb's place is rejected
    assert not pos_kept(parts, slot, "company", "v")
    cands = synonym_candidates(parts, wordnet)[slot]
    assert cands and all(wordnet.reader.synsets(c, "v") for c in cands)
    noun = w.split("The company is in the market")
    assert slot_tags(noun)[w.word_slots(noun)[5]] == "NN"
    assert all(wordnet.reader.synsets(c, "n") for c in synonym_candidates(noun, wordnet)[w.word_slots(noun)[5]])


def test_an_edit_below_the_sentence_threshold_is_reverted_and_one_above_kept():
    original = ["the film was long and the plot was thin", "a quiet day"]
    edited = ["the movie was long and the storyline was thin", "a quiet day"]
    tally = Constraints(sentence=0.9, encoder=StubEncoder(bad={"storyline"}, low=0.85, high=0.95))
    assert constrain_texts(original, edited, tally) == ["the movie was long and the plot was thin", "a quiet day"]
    assert (tally.checked, tally.rejected) == (2, 1)
    assert tally.report() == {"rejected": 0.5, "similarity": pytest.approx(0.95)}
    lenient = Constraints(sentence=0.8, encoder=StubEncoder(bad={"storyline"}, low=0.85, high=0.95))
    assert constrain_texts(original, edited, lenient) == edited


def test_the_attack_skips_a_rejected_candidate_and_tries_the_next():
    text = "the new film was good and the actors did well"
    free = greedy_attack(KeywordPredictor("good"), [text], [1], budget=50, seed=0)[0]
    assert free.success
    first = w.pieces(free.adversarial.split()[4])[1].lower()
    predictor = KeywordPredictor("good")
    tally = Constraints(encoder=StubEncoder(bad={first}))
    (result,) = greedy_attack(predictor, [text], [1], budget=50, seed=0, constraints=tally)
    assert result.success and result.adversarial.split()[4] not in (first, "good")
    assert tally.rejected >= 1 and result.similarities == [pytest.approx(0.97)]
    assert result.queries == predictor.queries - 1 + tally.rejected   # rejected ones spent budget, unsent
    everything = Constraints(encoder=StubEncoder(low=0.1, high=0.1))
    (blocked,) = greedy_attack(KeywordPredictor("good"), [text], [1], budget=50, seed=0, constraints=everything)
    assert not blocked.success and blocked.adversarial == text


class CountingPredictor(KeywordPredictor):
    """Class 1 while two or more of the keywords are present: its probability falls with each
    keyword changed, so the greedy attack follows it and needs two words to flip it."""

    def __init__(self, *keywords):
        super().__init__(keywords[0])
        self.keywords = keywords

    def predict_proba(self, texts):
        self.queries += len(texts)
        p = [0.3 + 0.3 * len(set(self.keywords) & set(re.findall(r"\w+", t.lower()))) for t in texts]
        return np.array([[1 - min(x, 0.9), min(x, 0.9)] for x in p]).reshape(-1, 2)


def test_words_changed_cap_and_word_similarity():
    text = "the new film was good and the actors did great"      # 10 words, two keywords
    tight = Constraints(max_words_changed=0.1, encoder=StubEncoder())
    assert tight.max_changes(10) == 1
    (capped,) = greedy_attack(CountingPredictor("good", "great"), [text], [1], budget=60, seed=0, constraints=tight)
    assert not capped.success and len(capped.changed) <= 1
    loose = Constraints(max_words_changed=0.2, encoder=StubEncoder())
    (done,) = greedy_attack(CountingPredictor("good", "great"), [text], [1], budget=60, seed=0, constraints=loose)
    assert done.success and len(done.changed) == 2


@requires_wordnet
def test_word_similarity_rejects_a_distant_synonym(wordnet):
    text = "the new film was good and the actors did well"
    syns = wordnet.synonyms("good", "a")
    far = Constraints(word=0.6, encoder=StubEncoder(words={s: 0.3 for s in syns}))
    (result,) = greedy_attack(KeywordPredictor("good"), [text], [1], budget=50, seed=0, wordnet=wordnet,
                              constraints=far)
    assert result.success and w.pieces(result.adversarial.split()[4])[1] not in syns   # a typo did it
    assert far.rejected >= 1


@pytest.mark.parametrize("bad", [set(), {"good"}, {"gpod", "god", "goood", "ood"}])
def test_constrained_attack_never_succeeds_more_than_unconstrained(bad):
    texts = ["the new film was good and the actors did well", "good", "a good day", "nothing here at all",
             "the good the bad and the ugly film of the year good"]
    labels = [int("good" in t.split()) for t in texts]
    keep = [i for i, y in enumerate(labels) if y == 1]
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    for budget in (3, 10, 50):
        free = greedy_attack(KeywordPredictor("good"), texts, labels, budget=budget, seed=1)
        tally = Constraints(encoder=StubEncoder(bad=bad))
        held = greedy_attack(KeywordPredictor("good"), texts, labels, budget=budget, seed=1, constraints=tally)
        assert sum(r.success for r in held) <= sum(r.success for r in free)
        assert all(h.success <= f.success for h, f in zip(held, free))


@requires_wordnet
def test_evaluator_reports_constraint_scores_in_long_form(wordnet, monkeypatch):
    monkeypatch.setattr(ev_mod, "SentenceEncoder", lambda: StubEncoder(bad={"movie", "picture"}))
    texts = ["the new film was good and the actors did well", "a good film about the market price",
             "the price of the film was terrible", "a quiet movie with good songs"]
    predictor = KeywordPredictor("good")
    out = RobustnessEvaluator().evaluate(predictor, texts, [1, 1, 0, 1], predictor.labels, seed=0,
                                         perturbations=["synonyms", "casing"], severity=1.0, query_budget=20)
    got = {m.name: m for m in out.metrics}
    for name in ("rejected_synonyms", "edit_similarity_synonyms", "unconstrained_flip_synonyms",
                 "unconstrained_flip_rate", "rejected_attack", "unconstrained_attack_success_rate"):
        assert name in got, name
    assert 0 < got["rejected_synonyms"].value <= 1 and not got["rejected_synonyms"].higher_is_better
    assert got["attack_success_rate"].value <= got["unconstrained_attack_success_rate"].value
    assert "rejected_casing" not in got                      # casing is not a checked perturbation
    off = RobustnessEvaluator().evaluate(predictor, texts, [1, 1, 0, 1], predictor.labels, seed=0,
                                         perturbations=["synonyms"], constraints=False, attack=False)
    assert not any(m.name.startswith(("rejected_", "unconstrained_")) for m in off.metrics)


def test_threshold_options_are_checked():
    from hub.errors import UserError

    with pytest.raises(UserError, match="sentence_similarity must be in"):
        RobustnessEvaluator().evaluate(KeywordPredictor("x"), ["x"], [0], ["a", "b"], sentence_similarity=1.5)
    with pytest.raises(UserError, match="did you mean 'synonyms'"):
        RobustnessEvaluator().evaluate(KeywordPredictor("x"), ["x"], [0], ["a", "b"], checked_perturbations=["synonym"])


def test_minilm_sentence_encoder_matches_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    from hub.models import resolve_model

    texts = ["the film was long", "the movie was long", "prices rose in the market today"]
    ours = SentenceEncoder().encode(texts)
    ref = st.SentenceTransformer(resolve_model("minilm"), device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(ours, ref, atol=1e-4)
    sims = ours @ ours.T
    assert sims[0, 1] > sims[0, 2]
