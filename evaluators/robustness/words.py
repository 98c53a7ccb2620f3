"""Word-level text editing shared by the perturbations and the attack.

A text is split on whitespace into ``parts``: even indices are tokens (possibly empty),
odd indices the whitespace between them, so ``"".join(parts)`` gives the text back exactly
and an edit never disturbs the spacing it does not mean to touch. A token is
``prefix + core + suffix`` where prefix and suffix are its leading and trailing punctuation
("(don't," → "(", "don't", ","). Hand-written: a dozen lines of regular expressions, where
a tokenizer library would lose the original spacing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from .lexicon import KEYBOARD_NEIGHBOURS, STOPWORDS

_WHITESPACE = re.compile(r"(\s+)")
_TOKEN = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)


def split(text: str) -> list[str]:
    """Tokens at even indices, the whitespace between them at odd ones."""
    return _WHITESPACE.split(text)


def word_slots(parts: Sequence[str]) -> list[int]:
    """Indices in ``parts`` of the non-empty tokens."""
    return [i for i in range(0, len(parts), 2) if parts[i]]


def pieces(token: str) -> tuple[str, str, str]:
    """(leading punctuation, core, trailing punctuation) of a token."""
    prefix, core, suffix = _TOKEN.match(token).groups()
    return prefix, core, suffix


def replace_core(token: str, new_core: str) -> str:
    prefix, _, suffix = pieces(token)
    return prefix + new_core + suffix


def is_content_word(core: str) -> bool:
    """An alphabetic word that is not a function word: what synonyms and the attack may change."""
    return core.isalpha() and core.lower() not in STOPWORDS


def match_case(source: str, word: str) -> str:
    """``word`` in the case pattern of ``source`` (UPPER, Title or lower)."""
    if len(source) > 1 and source.isupper():
        return word.upper()
    if source[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def count(n: int, severity: float, rng: random.Random) -> int:
    """How many of ``n`` eligible units to touch: ``severity * n`` rounded at random (so the
    expected share is exactly ``severity``), at least one when anything is eligible."""
    if n == 0 or severity <= 0:
        return 0
    exact = severity * n
    k = int(exact) + (rng.random() < exact - int(exact))
    return min(n, max(1, k))


def choose(items: Sequence, severity: float, rng: random.Random) -> list:
    """A seeded sample of ``count(len(items), severity)`` items, in their original order."""
    k = count(len(items), severity, rng)
    picked = sorted(rng.sample(range(len(items)), k))
    return [items[i] for i in picked]


def delete_word(parts: list[str], slot: int) -> None:
    """Remove the token at ``slot`` with the whitespace after it (before it, for the last word)."""
    parts[slot] = ""
    if any(parts[j] for j in range(slot + 2, len(parts), 2)):
        parts[slot + 1] = ""
    elif slot > 0:
        parts[slot - 1] = ""


def _neighbour(char: str, rng: random.Random) -> str:
    near = KEYBOARD_NEIGHBOURS.get(char.lower())
    if not near:
        return char
    new = rng.choice(near)
    return new.upper() if char.isupper() else new


def typo(word: str, rng: random.Random) -> str:
    """One keyboard typo in ``word``: a neighbour key, two swapped letters, a deletion or an
    insertion, chosen at random; the result always differs from ``word``."""
    kinds = ["neighbour", "delete", "insert"]
    swappable = [i for i in range(len(word) - 1) if word[i] != word[i + 1]]
    if swappable:
        kinds.append("swap")
    kind = rng.choice(kinds)
    if kind == "swap":
        i = rng.choice(swappable)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "delete" and len(word) > 1:
        i = rng.randrange(len(word))
        return word[:i] + word[i + 1:]
    letters = [i for i, c in enumerate(word) if c.lower() in KEYBOARD_NEIGHBOURS]
    if not letters:
        return word + word[-1:]
    i = rng.choice(letters)
    if kind == "insert":
        return word[:i + 1] + _neighbour(word[i], rng) + word[i + 1:]
    return word[:i] + _neighbour(word[i], rng) + word[i + 1:]
