"""Errors that are the user's to fix.

A :class:`UserError` carries one sentence naming the input, what was wrong and what to
do. The CLI prints it on stderr and exits with code 2, without a traceback. Anything
else is a bug and raises as usual.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input (config, file, id, flag). Exit code 2."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest choice, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
