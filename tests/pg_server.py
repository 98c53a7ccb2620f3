"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a Unix socket in a
temporary folder, no TCP port, fsync off; started once per session, a fresh database per test.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user (its folder
is given to that user); as anyone else it runs as them. pytest-postgresql's ``postgresql_proc``
would call ``pg_ctl`` as the current user and fail as root, hence these few lines.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

PASSWORD_USER, PASSWORD = "evalhub_pw", "right-password"   # the one role that signs in with a password


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb`` and ``pg_ctl``; None if none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PgServer:
    """A PostgreSQL server in a temporary folder; :meth:`new_database` gives a fresh database's URL."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="evalhub-pg-"))   # short: a socket path has ~100 bytes
        self.data = self.folder / "data"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> "PgServer":
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        # one role signs in with a password (so a wrong one can be tested); everyone else is trusted
        (self.data / "pg_hba.conf").write_text(f"local all {PASSWORD_USER} scram-sha-256\nlocal all all trust\n")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "start",
                  "-o", f"-c listen_addresses='' -k {self.folder} -c fsync=off -c full_page_writes=off")
        self.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        return self

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        login = f"{user}:{password}" if password else user
        return f"postgresql+psycopg://{login}@/{database}?host={self.folder}"

    def execute(self, sql: str) -> None:
        """Run one statement outside a transaction (``CREATE DATABASE``, ``CREATE ROLE``)."""
        import psycopg

        with psycopg.connect(host=str(self.folder), user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        self.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
