"""Sign-in for `evalhub serve`: accounts from ``--auth USER:PASS`` and ``--auth-file FILE``.

A file line is ``user:password`` or ``user:scrypt$<salt>$<hash>`` (``evalhub hash-password
USER`` writes one; the hash is :func:`hashlib.scrypt` with n=2**14, r=8, p=1, salt and hash
in URL-safe base64). Passwords read from a file never appear in ``ps``; passwords given
with ``--auth`` do, which the help says. Checks compare in constant time
(:func:`hmac.compare_digest`). Messages about a bad line give its number, never its text.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import sys
from pathlib import Path
from typing import Callable

from hub.errors import UserError, clean, quote

SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt>$<hash>`` for an auth file line."""
    if not password:
        raise UserError("the password is empty; give one on stdin")
    salt = salt or os.urandom(16)
    return f"scrypt${_b64(salt)}${_b64(hashlib.scrypt(password.encode(), salt=salt, **SCRYPT))}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a plain password or a ``scrypt$`` hash)."""
    if stored.startswith("scrypt$"):
        _, salt, digest = stored.split("$", 2)
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), **SCRYPT)
        return hmac.compare_digest(got, _unb64(digest))
    return hmac.compare_digest(password.encode(), stored.encode())


def _account(text: str, where: str) -> tuple[str, str]:
    user, sep, secret = text.partition(":")
    user = user.strip()
    if not sep or not user or not secret:
        raise UserError(f"{where}: expected USER:PASSWORD (a name, a colon, a password)")
    if secret.startswith("scrypt$"):
        parts = secret.split("$")
        try:
            ok = len(parts) == 3 and len(_unb64(parts[1])) >= 8 and len(_unb64(parts[2])) == SCRYPT["dklen"]
        except ValueError:
            ok = False
        if not ok:
            raise UserError(f"{where}: the scrypt hash of {quote(user)} is damaged; make it again with "
                            "`evalhub hash-password USER`")
    return user, secret


def read_auth_file(path: str | Path) -> dict[str, str]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"--auth-file {clean(path, 200)} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--auth-file {clean(path, 200)} cannot be read ({type(exc).__name__})") from None
    accounts: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, secret = _account(line.rstrip("\r"), f"--auth-file {clean(path, 200)}, line {number}")
        if user in accounts:
            raise UserError(f"--auth-file {clean(path, 200)}, line {number}: {quote(user)} is listed twice")
        accounts[user] = secret
    if not accounts:
        raise UserError(f"--auth-file {clean(path, 200)} lists no accounts (one `user:password` per line)")
    return accounts


def load_auth(pairs: list[str], file: str | None) -> Callable[[str, str], bool] | None:
    """Gradio's ``auth`` callable for the given accounts, or None when none were given."""
    accounts: dict[str, str] = read_auth_file(file) if file else {}
    for index, pair in enumerate(pairs, 1):
        user, secret = _account(pair, f"--auth (number {index})")
        accounts[user] = secret
    if not accounts:
        return None

    def check(user: str, password: str) -> bool:
        stored = accounts.get(user)
        if stored is None:
            check_password(password, next(iter(accounts.values())))   # same time for unknown users
            return False
        return check_password(password, stored)

    return check


def warn_open_host(host: str) -> None:
    """Without sign-in the app should listen on this machine only; say so when it does not."""
    if host not in LOOPBACK:
        print(f"evalhub: warning: serving on {clean(host, 60)} without --auth: anyone who can reach this "
              "machine can use the app; add --auth-file FILE (or --auth USER:PASS)", file=sys.stderr)
