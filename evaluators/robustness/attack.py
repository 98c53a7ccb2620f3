"""A query-budgeted greedy word-substitution attack, batched across examples.

For each example (text, true label) the attack

1. ranks content words by how much deleting each one lowers the true label's probability
   (every deletion of every example goes to the predictor in one call), then
2. walks the ranking: for each word it tries WordNet synonyms, then keyboard typos; the
   candidate that lowers the true probability most is kept, and the attack stops when the
   prediction flips (success) or the example's query budget is spent (failure).

Each round of step 2 sends the candidates of *all* unfinished examples in one
``predict_proba`` call, so the number of calls is about twice the number of ranked words,
not examples x words. Every text sent counts as one query of its example; the clean
prediction is not counted (the evaluator already has it).

With ``constraints`` (``constraints.py``), every round's candidates of all examples are
checked in one batched encoder pass against the clean text before any is sent: a candidate
that fails is never sent, but it spends one query of the budget as if it had been, so the
constrained and unconstrained attacks walk the same candidates with the same budget and the
constraints cannot buy the search extra words (its ``queries`` count both).

Ranking costs at most half the budget: with more content words than that, only the first
ones are ranked (they are also the ones a truncating model sees). This is the
deletion-importance greedy search of TextFooler / TextAttack's ``GreedyWordSwapWIR``,
hand-written because TextAttack cannot be installed beside transformers 5 and its search
queries one example at a time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import words as w
from .constraints import Constraints, pos_kept, slot_tags, substitutable_pos

MAX_SYNONYMS = 8   # synonym candidates per word
TYPOS = 3          # typo candidates per word


@dataclass
class AttackResult:
    key: Any                 # the caller's id of the example
    text: str
    label: int
    adversarial: str = ""
    prediction: int = -1     # prediction on `adversarial`
    success: bool = False
    queries: int = 0
    words: int = 0           # words in the text
    changed: set = field(default_factory=set)   # word slots substituted
    similarities: list = field(default_factory=list)   # window similarity of each kept edit (constrained)

    @property
    def changed_fraction(self) -> float:
        return len(self.changed) / self.words if self.words else 0.0


@dataclass
class _State:
    result: AttackResult
    parts: list[str]
    p_true: float
    steps: list[tuple[int, str]] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)
    tags: dict = field(default_factory=dict)   # Penn tag of each word slot in the clean text
    original: list[str] = field(default_factory=list)   # the clean text's parts (edits are checked against it)


def _candidates(state: _State, slot: int, kind: str, wordnet: Any) -> list[str]:
    """Replacement tokens for the word at ``slot``: synonyms or typos of its current form."""
    core = w.pieces(state.parts[slot])[1]
    if kind == "synonym":
        pos = substitutable_pos(core, state.tags.get(slot)) if wordnet else None
        new = [w.match_case(core, s) for s in (wordnet.synonyms(core, pos) if pos else [])[:MAX_SYNONYMS]
               if pos_kept(state.parts, slot, s, pos)]
    else:
        new = list(dict.fromkeys(w.typo(core, state.rng) for _ in range(TYPOS)))
    return [w.replace_core(state.parts[slot], c) for c in new if c != core]


def _rank(states: list[_State], predictor: Any, budget: int) -> None:
    """Order each example's content words by the drop in true-label probability on deletion."""
    texts, owners = [], []
    for n, st in enumerate(states):
        slots = [i for i in w.word_slots(st.parts) if w.is_content_word(w.pieces(st.parts[i])[1])]
        st.steps = [(i, kind) for i in slots for kind in ("synonym", "char")]
        for i in slots[:budget // 2]:
            parts = list(st.parts)
            w.delete_word(parts, i)
            texts.append("".join(parts))
            owners.append((n, i))
    if not texts:
        return
    probs = predictor.predict_proba(texts)
    drops: dict[int, dict[int, float]] = {}
    for (n, i), row in zip(owners, probs):
        st = states[n]
        drops.setdefault(n, {})[i] = st.p_true - float(row[st.result.label])
        st.result.queries += 1
    for n, st in enumerate(states):
        d = drops.get(n, {})
        slots = list(dict.fromkeys(i for i, _ in st.steps))
        ranked = sorted(d, key=lambda i: -d[i]) + [i for i in slots if i not in d]
        st.steps = [(i, kind) for i in ranked for kind in ("synonym", "char")]


def _next_batch(st: _State, budget: int, wordnet: Any, cap: int | None) -> tuple[int, str, list[str]]:
    """The next step of an example that has candidates, cut to its remaining budget; with a
    ``cap`` on changed words, only already-changed words once it is reached."""
    while st.steps and st.result.queries < budget:
        slot, kind = st.steps.pop(0)
        if cap is not None and slot not in st.result.changed and len(st.result.changed) >= cap:
            continue
        cands = _candidates(st, slot, kind, wordnet)[:budget - st.result.queries]
        if cands:
            return slot, kind, cands
    return -1, "", []


def _check(batches: list, constraints: Constraints) -> list:
    """The batches with the candidates that fail the constraints removed (one encoder pass)."""
    edits, words = [], []
    for st, slot, kind, cands in batches:
        for token in cands:
            after = st.parts[:slot] + [token] + st.parts[slot + 1:]
            edits.append((st.original, after, slot, slot + 1, slot, slot + 1))
            words.append((w.pieces(st.original[slot])[1], w.pieces(token)[1]) if kind == "synonym" else None)
    sentence = constraints.sentence_scores(edits)
    pairs = [p for p in words if p]
    word_sims = iter(constraints.encoder.similarity([(a.lower(), b.lower()) for a, b in pairs]))
    word = np.array([next(word_sims) if p else 1.0 for p in words])
    ok = constraints.passes(sentence, word)
    out, k = [], 0
    for st, slot, kind, cands in batches:
        keep = [(c, float(sentence[k + j])) for j, c in enumerate(cands) if ok[k + j]]
        k += len(cands)
        st.result.queries += len(cands) - len(keep)   # a rejected candidate spends budget as a query would
        if keep:
            out.append((st, slot, kind, keep))
    return out


def _round(states: list[_State], predictor: Any, budget: int, wordnet: Any,
           constraints: Constraints | None) -> list[_State]:
    """One greedy step for every active example in one predictor call; returns those still active."""
    cap = {id(st): constraints.max_changes(st.result.words) if constraints else None for st in states}
    batches = [(st, *_next_batch(st, budget, wordnet, cap[id(st)])) for st in states]
    batches = [(st, slot, kind, [(c, 1.0) for c in cands]) for st, slot, kind, cands in batches if cands]
    if constraints and batches:
        checked = _check([(st, slot, kind, [c for c, _ in cands]) for st, slot, kind, cands in batches], constraints)
        passed = {id(b[0]) for b in checked}
        active = [st for st, *_ in batches if id(st) not in passed and st.steps and st.result.queries < budget]
        batches = checked
    else:
        active = []
    if not batches:
        return active
    texts = ["".join(st.parts[:slot] + [token] + st.parts[slot + 1:])
             for st, slot, _, cands in batches for token, _ in cands]
    probs = predictor.predict_proba(texts)
    start = 0
    for st, slot, _, scored in batches:
        cands = [c for c, _ in scored]
        rows = probs[start:start + len(cands)]
        start += len(cands)
        st.result.queries += len(cands)
        label = st.result.label
        flipped = [j for j, row in enumerate(rows) if int(np.argmax(row)) != label]
        pool = flipped or range(len(cands))
        best = min(pool, key=lambda j: float(rows[j][label]))
        if flipped or float(rows[best][label]) < st.p_true:
            st.parts[slot], st.p_true = cands[best], float(rows[best][label])
            st.result.changed.add(slot)
            if constraints:
                st.result.similarities.append(scored[best][1])
            st.result.prediction = int(np.argmax(rows[best]))
        if flipped:
            st.result.success = True
        elif st.result.queries < budget and st.steps:
            active.append(st)
    return active


def greedy_attack(predictor: Any, texts: list[str], labels: list[int], *, budget: int = 50,
                  seed: int = 0, keys: list[Any] | None = None, wordnet: Any = None,
                  clean_probs: np.ndarray | None = None,
                  constraints: Constraints | None = None) -> list[AttackResult]:
    """Attack every (text, label) pair the predictor gets right.

    ``wordnet`` (a :class:`~.wordnet.WordNet`) gives the synonym candidates; without it only
    typos are tried; synonyms keep the POS each word has in its sentence and never replace a
    name or stopword. ``constraints`` (see ``constraints.py``) drops candidates that fail the
    sentence or word check before they are sent, and caps the share of words changed; the
    tally of checked and rejected edits is kept on it. ``clean_probs`` (the predictor's probabilities on ``texts``) saves a call;
    ``keys`` name the examples in the results and seed each example's typos.
    """
    keys = list(range(len(texts))) if keys is None else list(keys)
    if clean_probs is None:
        clean_probs = predictor.predict_proba(texts) if texts else np.zeros((0, 0))
    states = []
    for key, text, label, row in zip(keys, texts, labels, clean_probs):
        parts = w.split(text)
        result = AttackResult(key=key, text=text, label=int(label), prediction=int(np.argmax(row)),
                              words=len(w.word_slots(parts)))
        states.append(_State(result, parts, float(row[label]), rng=random.Random(f"{seed}:attack:{key}"),
                             tags=slot_tags(parts) if wordnet else {}, original=list(parts)))
    _rank(states, predictor, budget)
    active = [st for st in states if st.result.queries < budget]
    while active:
        active = _round(active, predictor, budget, wordnet, constraints)
    for st in states:
        st.result.adversarial = "".join(st.parts)
    return [st.result for st in states]
