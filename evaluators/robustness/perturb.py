"""The perturbation suite: seeded, pure text edits with a severity knob.

Every perturbation is a pure function ``(text, rng, severity) -> text``: ``rng`` is a
``random.Random`` the caller seeds, so the same seed gives the same output, and
``severity`` in [0, 1] is the share of the *eligible* units it touches (rounded at random
so the expected share is exact, at least one unit when any is eligible):

    char_noise    words of 2+ letters    one keyboard typo each (neighbour key, swap, deletion, insertion)
    casing        words with letters     lower ↔ UPPER ↔ Title
    punctuation   words                  trailing punctuation removed, or a mark added
    whitespace    gaps between words     doubled, turned into a tab or newline, or removed (words join)
    contractions  contractions, and expandable word pairs   "do not" ↔ "don't"
    synonyms      content words WordNet has synonyms for    a synonym keeping the POS in context; never a
                  (not names, stopwords)                    name or stopword (see constraints.py)
    entities      known capitalised names, numbers          another name of the same kind, other digits
    word_dropout  words                  deleted (one word always stays)

Hand-written because no maintained library does seeded perturbations with these
contracts: nlpaug and TextAttack's transformations draw from global random state and
TextAttack cannot be installed beside transformers 5 (its pins conflict).
"""

from __future__ import annotations

import random
import re
from typing import Callable

from . import words as w
from .lexicon import CONTRACTIONS, ENTITIES, ENTITY_KIND, EXPANSIONS

Perturbation = Callable[[str, random.Random, float], str]
MAX_SYNONYMS = 5        # pick among the most frequent senses' synonyms: rarer ones drift in meaning
_MARKS = (",", ".", "!", "?", ";", ":", "...")
_DIGITS = re.compile(r"\d+")


def char_noise(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    eligible = [i for i in w.word_slots(parts) if sum(c.isalpha() for c in w.pieces(parts[i])[1]) >= 2]
    for i in w.choose(eligible, severity, rng):
        parts[i] = w.replace_core(parts[i], w.typo(w.pieces(parts[i])[1], rng))
    return "".join(parts)


def _recase(core: str, rng: random.Random) -> str:
    if core.islower():
        options = [core.upper(), core.title()] if len(core) > 1 else [core.upper()]
    elif core.isupper() and len(core) > 1:
        options = [core.lower(), core.title()]
    else:
        options = [core.lower(), core.upper()]
    new = rng.choice(options)
    return new if new != core else core.swapcase()


def casing(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    eligible = [i for i in w.word_slots(parts) if any(c.isalpha() for c in w.pieces(parts[i])[1])]
    for i in w.choose(eligible, severity, rng):
        parts[i] = w.replace_core(parts[i], _recase(w.pieces(parts[i])[1], rng))
    return "".join(parts)


def punctuation(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    for i in w.choose(w.word_slots(parts), severity, rng):
        prefix, core, suffix = w.pieces(parts[i])
        if suffix and core:
            parts[i] = prefix + core
        else:
            parts[i] = parts[i] + rng.choice(_MARKS)
    return "".join(parts)


def whitespace(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    gaps = [i for i in range(1, len(parts) - 1, 2) if parts[i - 1] and parts[i + 1]]
    for i in w.choose(gaps, severity, rng):
        parts[i] = rng.choice(["  ", "\t", "\n", ""])
    return "".join(parts)


def _contraction_sites(parts: list[str]) -> list[tuple[int, ...]]:
    """Slots of contractions ``(i,)`` and of expandable word pairs ``(i, j)``."""
    slots = w.word_slots(parts)
    sites: list[tuple[int, ...]] = []
    for a, b in zip(slots, slots[1:] + [None]):
        core = w.pieces(parts[a])[1].replace("\u2019", "'").lower()
        if core in CONTRACTIONS:
            sites.append((a,))
        elif b is not None and not w.pieces(parts[a])[2] and not w.pieces(parts[b])[0]:
            if f"{core} {w.pieces(parts[b])[1].lower()}" in EXPANSIONS:
                sites.append((a, b))
    return sites


def contractions(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    used: set[int] = set()
    for site in w.choose(_contraction_sites(parts), severity, rng):
        if used & set(site):  # "it is not": "it is" and "is not" overlap; the first wins
            continue
        used |= set(site)
        first = w.pieces(parts[site[0]])[1]
        if len(site) == 1:
            parts[site[0]] = w.replace_core(parts[site[0]], w.match_case(first, CONTRACTIONS[
                first.replace("\u2019", "'").lower()]))
        else:
            a, b = site
            pair = f"{first.lower()} {w.pieces(parts[b])[1].lower()}"
            parts[a] = w.pieces(parts[a])[0] + w.match_case(first, EXPANSIONS[pair]) + w.pieces(parts[b])[2]
            parts[a + 1] = parts[b] = ""
    return "".join(parts)


def synonym_candidates(parts: list[str], wordnet) -> dict[int, list[str]]:
    """Each substitutable word slot's synonyms that keep its POS in context (constraints.py):
    no stopword, name or proper noun; most frequent sense first."""
    from .constraints import pos_kept, slot_tags, substitutable_pos

    tags = slot_tags(parts)
    out = {}
    for i in w.word_slots(parts):
        core = w.pieces(parts[i])[1]
        pos = substitutable_pos(core, tags.get(i))
        if pos is None:
            continue
        kept = [s for s in wordnet.synonyms(core, pos)[:MAX_SYNONYMS] if pos_kept(parts, i, s, pos)]
        if kept:
            out[i] = kept
    return out


def synonyms(text: str, rng: random.Random, severity: float) -> str:
    from .wordnet import get_wordnet

    parts = w.split(text)
    candidates = synonym_candidates(parts, get_wordnet())
    for i in w.choose(list(candidates), severity, rng):
        core = w.pieces(parts[i])[1]
        parts[i] = w.replace_core(parts[i], w.match_case(core, rng.choice(candidates[i])))
    return "".join(parts)


def _other_digits(run: str, rng: random.Random) -> str:
    """Other digits of the same length (no new leading zero)."""
    while True:
        new = "".join(rng.choice("123456789" if i == 0 and len(run) > 1 else "0123456789")
                      for i in range(len(run)))
        if new != run:
            return new


def entities(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    eligible = [i for i in w.word_slots(parts)
                if (core := w.pieces(parts[i])[1]) in ENTITY_KIND or any(c.isdigit() for c in core)]
    for i in w.choose(eligible, severity, rng):
        core = w.pieces(parts[i])[1]
        if core in ENTITY_KIND:
            new = rng.choice([name for name in ENTITIES[ENTITY_KIND[core]] if name != core])
        else:
            new = _DIGITS.sub(lambda m: _other_digits(m.group(), rng), core)
        parts[i] = w.replace_core(parts[i], new)
    return "".join(parts)


def word_dropout(text: str, rng: random.Random, severity: float) -> str:
    parts = w.split(text)
    slots = w.word_slots(parts)
    if len(slots) < 2:
        return text
    k = min(w.count(len(slots), severity, rng), len(slots) - 1)
    for i in sorted(rng.sample(slots, k), reverse=True):
        w.delete_word(parts, i)
    return "".join(parts)


PERTURBATIONS: dict[str, Perturbation] = {
    "char_noise": char_noise, "casing": casing, "punctuation": punctuation,
    "whitespace": whitespace, "contractions": contractions, "synonyms": synonyms,
    "entities": entities, "word_dropout": word_dropout,
}
NEEDS_WORDNET = frozenset({"synonyms"})


def perturb(name: str, text: str, severity: float, *, seed: int, key: object = "") -> str:
    """Apply perturbation ``name`` with an rng seeded by (seed, name, key): the same
    arguments always give the same text, whatever else ran before."""
    return PERTURBATIONS[name](text, random.Random(f"{seed}:{name}:{key}"), severity)
