"""PII detection: e-mail addresses, phone numbers, payment card numbers and IBANs.

Hand-written regular expressions plus checksums, because the candidates (Presidio, scrubadub)
pull in spaCy models or network downloads that these machines cannot have, and four
well-known patterns do not need them. Cards must pass the Luhn check (13-19 digits, spaces or
dashes allowed between digits), IBANs the ISO 13616 mod-97 check. Phone numbers are the fuzzy
part: a number counts only with a leading ``+`` country code, an area code in parentheses,
at least two separators between digit groups, or a trunk ``0`` and one separator ("0151
23456789"), and never when it reads as a date or as a
thousands-grouped amount, so "1999", "2024-01-15" and "1 000 000" are not phones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PII_TYPES = ("email", "phone", "card", "iban")

_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,8}(?:[ .-]\d{1,8}){0,5}(?![\w-])")
_DATE = re.compile(r"\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
_THOUSANDS = re.compile(r"\d{1,3}(?:([ .,])\d{3})(?:\1\d{3})*")


@dataclass(frozen=True)
class PiiSpan:
    """One detected item: its type and [start, end) character offsets into the text."""

    type: str
    start: int
    end: int
    text: str

    def to_dict(self, with_text: bool = False) -> dict:
        row = {"type": self.type, "start": self.start, "end": self.end}
        if with_text:
            row["text"] = self.text
        return row


def luhn_valid(number: str) -> bool:
    """Luhn checksum of a digit string (spaces and dashes ignored), 13-19 digits."""
    digits = re.sub(r"[ -]", "", number)
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: 15-34 characters, country letters, check digits, mod 97 == 1."""
    s = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    rearranged = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _is_phone(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    if candidate.startswith("+"):
        return 7 <= len(digits) <= 15          # E.164: at most 15 digits with the country code
    if not 7 <= len(digits) <= 12:             # national numbers are shorter (and ISBN-13s longer)
        return False
    if "(" in candidate:
        return True
    if _DATE.fullmatch(candidate) or _THOUSANDS.fullmatch(candidate):
        return False
    separators = len(re.findall(r"[ .-]", candidate))
    # national trunk prefix: "0151 23456789", "020 7946 0958"
    return separators >= 2 or (separators == 1 and candidate.startswith("0") and len(digits) >= 9)


def _iban_spans(text: str) -> list[PiiSpan]:
    spans = []
    for m in _IBAN.finditer(text):
        candidate = m.group(0)
        # the greedy match may run into a following code word: shorten group by group
        while candidate and not iban_valid(candidate):
            candidate = candidate.rsplit(" ", 1)[0] if " " in candidate else ""
        if candidate:
            spans.append(PiiSpan("iban", m.start(), m.start() + len(candidate), candidate))
    return spans


def find_pii(text: str, types: Sequence[str] = PII_TYPES) -> list[PiiSpan]:
    """Every PII item in ``text`` of the given types, sorted by offset, never overlapping.

    Earlier types in (email, iban, card, phone) win overlaps: a valid card number is not also
    reported as a phone number.
    """
    unknown = set(types) - set(PII_TYPES)
    if unknown:
        raise ValueError(f"unknown PII types {sorted(unknown)}; valid: {', '.join(PII_TYPES)}")
    found: list[PiiSpan] = []

    def add(span: PiiSpan) -> None:
        if all(span.end <= s.start or span.start >= s.end for s in found):
            found.append(span)

    if "email" in types:
        for m in _EMAIL.finditer(text):
            add(PiiSpan("email", m.start(), m.end(), m.group(0)))
    if "iban" in types:
        for span in _iban_spans(text):
            add(span)
    if "card" in types:
        for m in _CARD.finditer(text):
            if luhn_valid(m.group(0)):
                add(PiiSpan("card", m.start(), m.end(), m.group(0)))
    if "phone" in types:
        for m in _PHONE.finditer(text):
            if _is_phone(m.group(0)):
                add(PiiSpan("phone", m.start(), m.end(), m.group(0)))
    return sorted(found, key=lambda s: s.start)


def redact(text: str, spans: Sequence[PiiSpan] | None = None) -> str:
    """``text`` with each PII item replaced by ``[EMAIL]``, ``[PHONE]``, ``[CARD]`` or ``[IBAN]``."""
    spans = find_pii(text) if spans is None else spans
    out, pos = [], 0
    for span in sorted(spans, key=lambda s: s.start):
        out += [text[pos:span.start], f"[{span.type.upper()}]"]
        pos = span.end
    return "".join(out) + text[pos:]


def pii_rate(texts: Sequence[str], types: Sequence[str] = PII_TYPES) -> float:
    """Share of texts that contain at least one PII item of the given types."""
    if not texts:
        raise ValueError("no texts to scan")
    return sum(bool(find_pii(t, types)) for t in texts) / len(texts)
