"""Errors that are the user's to fix, and how any text reaches a terminal or a page.

A :class:`UserError` carries one sentence naming the input, what was wrong and what to
do. The CLI prints it on stderr and exits with code 2, without a traceback. Anything
else is a bug and raises as usual.

Every message may carry text a user (or a hostile file) chose: an id, a column name, a
line of a data file. :func:`quote` shows one such value bounded and escaped;
:func:`clean` makes a whole message safe to print: control characters (a newline that
would forge a second line, ANSI/OSC escapes) are escaped, anything shaped like a secret
(``hf_...`` tokens, ``Bearer ...`` headers, ``token=...`` pairs) is masked, and the text is
cut to a bounded length. Hand-written: no library does this for terminal output.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

MESSAGE_LIMIT = 800        # characters of one message shown whole; longer ones are cut
VALUE_LIMIT = 60           # characters of one quoted user value

_SECRETS = [
    re.compile(r"\bhf_[A-Za-z0-9]{8,}"),                                  # Hugging Face tokens
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),         # Authorization headers
    re.compile(r"(?i)\b((?:[a-z0-9_]*_)?(?:token|secret|password|passwd|api_?key))(\s*[=:]\s*)[^\s,;'\"]{4,}"),
    re.compile(r"\b(?:sk|pk|ghp|gho|ghs|glpat|xox[abp])[-_][A-Za-z0-9_-]{16,}"),  # other common API keys
]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


class UserError(Exception):
    """A mistake in the user's input (config, file, id, flag). Exit code 2."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest choice, or "" when none is close."""
    name = str(name)
    if len(name) > 200:          # difflib is quadratic; nothing that long is a near-miss of a name
        return ""
    close = difflib.get_close_matches(name, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {quote(close[0])}?)" if close else ""


def mask_secrets(text: str) -> str:
    """``text`` with every token-shaped substring replaced by ``***``."""
    for pattern in _SECRETS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
        elif pattern.groups == 1:
            text = pattern.sub(lambda m: f"{m.group(1)} ***", text)
        else:
            text = pattern.sub("***", text)
    return text


def escape_controls(text: str) -> str:
    """Control and bidi-override characters (and lone surrogates, which no terminal can encode) as
    visible escapes (``\\n``, ``\\x1b``, ``\\u202e``)."""
    def sub(match: re.Match) -> str:
        ch = match.group(0)
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(ch) or (
            f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return _CONTROL.sub(sub, text)


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def clean(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """A message made safe to print: secrets masked, control characters escaped, length bounded."""
    return cut(escape_controls(mask_secrets(str(text))), limit)


def quote(value: object, limit: int = VALUE_LIMIT) -> str:
    """One user-chosen value for a message: ``'value'``, escaped, masked and cut."""
    return "'" + clean(value, limit) + "'"


def quote_list(values: Iterable[object], most: int = 8, limit: int = 40) -> str:
    """The first ``most`` values, each quoted and cut, then how many more there are."""
    values = list(values)
    shown = ", ".join(quote(v, limit) for v in values[:most])
    return shown + (f", … ({len(values) - most} more)" if len(values) > most else "")


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type when empty), made safe by :func:`clean`."""
    text = str(exc).strip().splitlines()
    return clean(text[0] if text else type(exc).__name__, limit)
