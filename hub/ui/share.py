"""``--share``: gradio's public share link needs gradio's servers; check they are reachable first.

Offline, gradio would print a long warning (or a traceback) after the app is up; this makes
it one line before anything starts.
"""

from __future__ import annotations

import socket

from hub.errors import UserError

SHARE_HOST = "api.gradio.app"   # where gradio asks for a share server (gradio/networking.py)


def check_share(host: str = SHARE_HOST, timeout: float = 3.0) -> None:
    """UserError when ``host`` cannot be reached on port 443."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return
    except OSError:
        raise UserError(f"--share needs internet (it asks {host} for a public gradio.live link) and this "
                        "machine cannot reach it; serve on your network instead with --host 0.0.0.0 "
                        "--auth-file FILE") from None
