"""Identity-term counterfactuals: swap gender, religion, nationality, ethnicity and age terms.

The term lists are data (``identity_terms.yaml``, or a file of the same shape); this module
is the hand-written substitution, because no library in the stack does case-preserving,
whole-word, context-aware swaps over term groups: a regex per axis (longest term first,
hyphens count as word characters so "Hermione" and "she-wolf" stay intact), a replacement
that copies the case of the word it replaces, and the one context rule English pronouns need
("her" -> "his" before a word, "him" otherwise; "his" -> "her" / "hers").
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

from hub.errors import UserError

TERMS_FILE = Path(__file__).with_name("identity_terms.yaml")

# After "her"/"his", one of these (or punctuation, or the end) means the non-possessive reading.
_FUNCTION_WORDS = frozenset("""
a an the and or but nor so yet to in on at for with from of by about into onto over under
up down out off away back again too also very not never that this these those as if than
because when while is was are were be been am will would can could should may might must
do does did has have had it its him her me us them you i we they he she my your our their
here there now then today yesterday tomorrow tonight anything something everything nothing
everyone someone anyone all both each either neither more most less just only even still
""".split())
_NEXT_WORD = re.compile(r"\s+([A-Za-z][\w'-]*)")


@dataclass(frozen=True)
class Axis:
    """One identity axis: groups, aligned term rows, and the compiled matcher."""

    name: str
    groups: tuple[str, ...]
    rows: tuple[tuple[str | None, ...], ...]
    case_sensitive: bool = False
    ambiguous: dict[str, tuple[str, str]] = field(default_factory=dict)
    lookup: dict[str, tuple[int, int]] = field(default_factory=dict)   # key -> (row, group)
    pattern: re.Pattern | None = None

    def key(self, term: str) -> str:
        term = " ".join(term.split())
        return term if self.case_sensitive else term.lower()


@dataclass(frozen=True)
class Counterfactual:
    """A text with one axis swapped into one group."""

    idx: int                           # index of the original text
    axis: str
    target: str                        # the group the text was swapped into
    text: str
    swaps: tuple[tuple[str, str], ...]  # (replaced, replacement) in order of appearance


def match_case(source: str, target: str) -> str:
    """``target`` written in the case of ``source`` (UPPER, Title or lower; else as given)."""
    letters = [c for c in source if c.isalpha()]
    if len(letters) > 1 and source.isupper():
        return target.upper()
    if source[:1].isupper():
        return target[:1].upper() + target[1:]
    if source.islower():
        return target.lower()
    return target


def _build_axis(name: str, spec: dict, where: str) -> Axis:
    if not isinstance(spec, dict) or not spec.get("groups") or not spec.get("terms"):
        raise UserError(f"{where}: axis '{name}' needs 'groups' and 'terms' lists")
    unknown = set(spec) - {"groups", "terms", "case_sensitive", "ambiguous"}
    if unknown:
        raise UserError(f"{where}: axis '{name}' has unknown keys {sorted(unknown)}; "
                        "valid: groups, terms, case_sensitive, ambiguous")
    groups = tuple(str(g) for g in spec["groups"])
    if len(set(groups)) != len(groups) or len(groups) < 2:
        raise UserError(f"{where}: axis '{name}' needs at least two distinct groups, got {list(groups)}")
    rows = []
    for row in spec["terms"]:
        if not isinstance(row, list) or len(row) != len(groups):
            raise UserError(f"{where}: axis '{name}': row {row!r} must list one term per group {list(groups)}")
        rows.append(tuple(None if t is None else str(t) for t in row))
    axis = Axis(name, groups, tuple(rows), bool(spec.get("case_sensitive", False)))
    for r, row in enumerate(rows):
        for g, term in enumerate(row):
            if term is None:
                continue
            prev = axis.lookup.setdefault(axis.key(term), (r, g))
            if prev[1] != g:
                raise UserError(f"{where}: axis '{name}': '{term}' is listed under both "
                                f"'{groups[prev[1]]}' and '{groups[g]}'")
    _add_ambiguous(axis, spec.get("ambiguous") or {}, where)
    alternatives = sorted(axis.lookup, key=len, reverse=True)
    body = "|".join(r"\s+".join(map(re.escape, t.split())) for t in alternatives)
    flags = 0 if axis.case_sensitive else re.IGNORECASE
    object.__setattr__(axis, "pattern", re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", flags))
    return axis


def _add_ambiguous(axis: Axis, ambiguous: dict, where: str) -> None:
    if ambiguous and len(axis.groups) != 2:
        raise UserError(f"{where}: axis '{axis.name}': 'ambiguous' needs exactly two groups")
    for word, readings in ambiguous.items():
        if axis.key(word) not in axis.lookup or not isinstance(readings, list) or len(readings) != 2:
            raise UserError(f"{where}: axis '{axis.name}': ambiguous '{word}' must be a listed term "
                            "mapped to [before a word, otherwise]")
        axis.ambiguous[axis.key(word)] = (str(readings[0]), str(readings[1]))


@functools.lru_cache(maxsize=8)
def load_axes(path: str | None = None) -> dict[str, Axis]:
    """The identity axes of ``path`` (default: the project's ``identity_terms.yaml``)."""
    from hub.config import read_yaml

    file = Path(path) if path else TERMS_FILE
    if not file.is_file():
        raise UserError(f"identity terms file {file} not found; pass a YAML file shaped like {TERMS_FILE.name}")
    data = read_yaml(file)
    axes = data.get("axes") if isinstance(data, dict) else None
    if not isinstance(axes, dict) or not axes:
        raise UserError(f"{file}: expected a top-level 'axes' mapping of axis name -> groups and terms")
    return {name: _build_axis(name, spec, str(file)) for name, spec in axes.items()}


def swap(text: str, axis: Axis, target: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``text`` with every term of ``axis`` from another group replaced by ``target``'s term."""
    g = axis.groups.index(target)
    swaps: list[tuple[str, str]] = []

    def replace(m: re.Match) -> str:
        source = m.group(0)
        key = axis.key(source)
        row, group = axis.lookup[key]
        if group == g:
            return source
        if key in axis.ambiguous:
            nxt = _NEXT_WORD.match(text, m.end())
            before_word = nxt is not None and nxt.group(1).lower() not in _FUNCTION_WORDS
            new = axis.ambiguous[key][0 if before_word else 1]
        else:
            new = axis.rows[row][g]
        if new is None:
            return source
        new = match_case(source, new)
        swaps.append((source, new))
        return new

    return axis.pattern.sub(replace, text), tuple(swaps)


def counterfactuals(texts: list[str], axes: dict[str, Axis]) -> list[Counterfactual]:
    """Every (text, axis, target group) swap that changes the text, in text order."""
    out = []
    for idx, text in enumerate(texts):
        for axis in axes.values():
            if not axis.pattern.search(text):
                continue
            for target in axis.groups:
                new, swaps = swap(text, axis, target)
                if swaps and new != text:
                    out.append(Counterfactual(idx, axis.name, target, new, swaps))
    return out
