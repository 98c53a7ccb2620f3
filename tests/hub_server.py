"""An in-process Hub-API server for the tests, and its pytest fixture ``hub_server``.

Tests get the fixture through tests/conftest.py, which imports it at its bottom
(``from tests.hub_server import hub_server``), so any test module can take ``hub_server``.

The unmodified ``huggingface_hub.HfApi`` (2.x) talks to it over HTTP on 127.0.0.1: repo creation,
preupload, the LFS batch API, NDJSON commits (and pull requests), branches, refs, trees with
pagination, paths-info, and ``resolve`` downloads. Repos live in memory (tests/hub_server_git.py);
the endpoints are in tests/hub_server_api.py. The fixture yields the ``HubServer``:

- ``.endpoint`` (``http://127.0.0.1:PORT``), ``.token`` (write), ``.read_token`` (403 on writes),
  ``.bad_token`` (401 on every call), ``.user`` / ``.org`` (the namespaces the write token may use);
- ``.calls``: every request as a ``Call`` (method, path, route, query, status, token kind:
  "write", "read", "bad" or None), ``.routes(name)`` to filter them (e.g. ``"commit"``);
- ``.repo(repo_id, repo_type="model")`` (a ``Repo``: ``.branches``, ``.prs``, ``.resolve(rev)``),
  ``.commits(repo_id, repo_type="model")`` (all commits, oldest first),
  ``.files(repo_id, revision="main", repo_type="model")`` (path -> bytes);
- ``.drop_next_commit()``: the next commit request is read, then the connection is closed without an
  answer (the client sees a connection error) and the repo is left unchanged;
- ``.tree_page_size``: entries per tree page (1000 as on the Hub; set it small to test pagination).

It sets for the test, through monkeypatch, ``HF_ENDPOINT``, ``HF_TOKEN`` (the write token),
``HF_HUB_DISABLE_XET=1``, ``HF_HUB_OFFLINE=0``, ``HF_HUB_DISABLE_TELEMETRY=1`` and a temporary
``HF_HOME``, and, since huggingface_hub reads those at import time, the matching
``huggingface_hub.constants`` values (ENDPOINT, HUGGINGFACE_CO_URL_TEMPLATE, HF_HUB_OFFLINE, which
``is_offline_mode()`` returns, HF_HUB_DISABLE_XET, HF_HOME, HF_HUB_CACHE, the token paths) and the
endpoint of ``huggingface_hub.hf_api.api`` (the instance behind the module-level functions).

Simplified against the Hub: one LFS object store for all repos; LFS is chosen by size (10 MB),
the default .gitattributes suffixes or a NUL byte in the sample (a repo's own .gitattributes and
.gitignore are not read: ``shouldIgnore`` is always false); downloads are served directly (no
redirect to a CDN) and ignore ``Range``; a private repo read without a token is a plain 404
RepoNotFound; writes need the write token and the user's or ``org`` namespace, pull requests
included; no tags, discussions, Xet, or merging of pull requests.
"""

from __future__ import annotations

import re
import secrets
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

import pytest

from tests import hub_server_api as api
from tests.hub_server_api import DROP, HubError, Request, Response
from tests.hub_server_git import Blob, Commit, Repo, wants_lfs

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO_API = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+?)(?:/(.*))?$")
_LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_LFS_OBJECT = re.compile(r"^/lfs/(upload|verify)/([0-9a-f]{64})$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


@dataclass(frozen=True)
class Call:
    """One request the server answered (status None: the connection was dropped)."""

    method: str
    path: str
    route: str
    query: dict
    status: int | None
    token: str | None


class HubServer:
    """The server's state and its HTTP front; start() runs it in a daemon thread."""

    def __init__(self, user: str = "evalhub-tester", org: str = "evalhub-org"):
        self.user, self.org = user, org
        self.token = "hf_" + secrets.token_hex(17)
        self.read_token = "hf_" + secrets.token_hex(17)
        self.bad_token = "hf_" + secrets.token_hex(17)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content (one store for all repos)
        self.calls: list[Call] = []
        self.drop_commits = 0
        self.tree_page_size = 1000
        self.lock = threading.RLock()
        self.httpd: ThreadingHTTPServer | None = None
        self.endpoint = ""

    # --- what tests use -------------------------------------------------------------------------

    def drop_next_commit(self) -> None:
        with self.lock:
            self.drop_commits += 1

    def routes(self, name: str) -> list[Call]:
        """The recorded calls of one route ("commit", "preupload", "create_repo", "branch", ...)."""
        return [call for call in self.calls if call.route == name]

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        repo = self.repo(repo_id, repo_type)
        return [repo.commits[oid] for oid in repo.order]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        commit = self.repo(repo_id, repo_type).resolve(revision)
        return {path: blob.data for path, blob in commit.files.items()}

    def add_files(self, repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> str:
        """Seed a repo (created if missing) with a commit on main, without HTTP; returns the commit oid.

        Each file is stored in LFS or not as an upload through the client would be (``wants_lfs``).
        """
        with self.lock:
            repo = self.repos.setdefault((repo_type, repo_id), Repo(repo_type, repo_id))
            head = repo.resolve("main")
            blobs = {p: Blob(d, wants_lfs(p, len(d), d[:512])) for p, d in files.items()}
            new = {**head.files, **blobs}
            return repo.commit("main", head.oid, "seed files", new).oid

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="hub-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def install(self, monkeypatch, hf_home: Path) -> None:
        """Point huggingface_hub (environment and import-time constants) at this server for one test."""
        import huggingface_hub.constants as constants
        import huggingface_hub.hf_api as hf_api

        env = {"HF_ENDPOINT": self.endpoint, "HF_TOKEN": self.token, "HF_HUB_DISABLE_XET": "1",
               "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HOME": str(hf_home),
               "HF_HUB_CACHE": str(hf_home / "hub"), "NO_PROXY": "127.0.0.1,localhost"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("TRANSFORMERS_OFFLINE", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
            monkeypatch.delenv(name, raising=False)
        patches = {
            "ENDPOINT": self.endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": self.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_TOKEN_PATH": str(hf_home / "token"), "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
            "HF_URL_HOSTS": constants.HF_URL_HOSTS | {"127.0.0.1"},
        }
        for name, value in patches.items():
            monkeypatch.setattr(constants, name, value)
        monkeypatch.setattr(hf_api.api, "endpoint", self.endpoint)

    # --- dispatch -------------------------------------------------------------------------------

    def token_kind(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        value = authorization.removeprefix("Bearer ").strip()
        return {self.token: "write", self.read_token: "read"}.get(value, "bad")

    def dispatch(self, req: Request) -> tuple[str, Response | object]:
        """(route name, response) for one request; Hub errors become their error responses."""
        route = "unknown"
        try:
            route, handler = self.route(req)
            if req.token == "bad":
                raise HubError(401, "Invalid credentials in Authorization header")
            with self.lock:
                return route, handler()
        except HubError as exc:
            return route, exc.response()

    def route(self, req: Request):
        """(route name, a no-argument callable answering ``req``)."""
        m, path = req.method, req.path
        simple = {("GET", "/api/whoami-v2"): ("whoami", api.whoami),
                  ("POST", "/api/repos/create"): ("create_repo", api.create_repo),
                  ("POST", "/api/validate-yaml"): ("validate_yaml", api.validate_yaml)}
        if (m, path) in simple:
            name, fn = simple[(m, path)]
            return name, lambda: fn(self, req)
        if match := _LFS_OBJECT.match(path):
            kind, oid = match.groups()
            fn = api.lfs_upload if kind == "upload" else api.lfs_verify
            return f"lfs_{kind}", lambda: fn(self, req, oid)
        if (match := _LFS_BATCH.match(path)) and m == "POST":
            repo_type = TYPES.get(match[1] or "models")
            return "lfs_batch", lambda: api.lfs_batch(self, req, self._repo(req, repo_type, match[2]))
        if (match := _REPO_API.match(path)):
            return self._repo_route(req, TYPES[match[1]], match[2], match[3] or "")
        if (match := _RESOLVE.match(path)) and m in ("GET", "HEAD"):
            repo_type, repo_id = TYPES.get(match[1] or "models"), match[2]
            revision, path = unquote(match[3]), unquote(match[4])
            return "resolve", lambda: api.resolve(self, req, self._repo(req, repo_type, repo_id), revision, path)
        raise HubError(404, f"No route for {m} {path}")

    def _repo(self, req: Request, repo_type: str, repo_id: str) -> Repo:
        return api.get_repo(self, req, repo_type, repo_id)

    def _repo_route(self, req: Request, repo_type: str, repo_id: str, rest: str):
        """Routes under /api/{type}s/{namespace}/{name}/..."""
        head, _, tail = rest.partition("/")
        arg = unquote(tail)
        table = {
            ("GET", ""): ("repo_info", lambda repo: api.repo_info(self, req, repo, "main")),
            ("GET", "revision"): ("repo_info", lambda repo: api.repo_info(self, req, repo, arg)),
            ("POST", "preupload"): ("preupload", lambda repo: api.preupload(self, req, repo, arg)),
            ("POST", "commit"): ("commit", lambda repo: api.commit(self, req, repo, arg)),
            ("POST", "paths-info"): ("paths_info", lambda repo: api.paths_info(self, req, repo, arg)),
            ("POST", "branch"): ("branch", lambda repo: api.create_branch(self, req, repo, arg)),
            ("GET", "refs"): ("refs", lambda repo: api.list_refs(self, req, repo)),
            ("GET", "commits"): ("commits", lambda repo: api.list_commits(self, req, repo, arg)),
        }
        if (req.method, head) == ("GET", "tree"):
            revision, _, sub = tail.partition("/")
            revision, sub = unquote(revision), unquote(sub)
            return "tree", lambda: api.tree(self, req, self._repo(req, repo_type, repo_id), revision, sub)
        if (req.method, head) not in table:
            raise HubError(404, f"No route for {req.method} {req.path}")
        name, fn = table[(req.method, head)]
        return name, lambda: fn(self._repo(req, repo_type, repo_id))

    def record(self, req: Request, route: str, status: int | None) -> None:
        with self.lock:
            self.calls.append(Call(req.method, unquote(req.path), route, req.query, status, req.token))


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 plumbing: read the request (Content-Length or chunked), answer what HubServer returns."""

    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format, *args):  # noqa: A002 - quiet: tests read .calls instead
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        req = Request(self.command, path, parse_qs(query), dict(self.headers), self._body(),
                      self.hub.token_kind(self.headers.get("Authorization")))
        route, resp = self.hub.dispatch(req)
        if resp is DROP:
            self.hub.record(req, route, None)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.hub.record(req, route, resp.status)
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(resp.body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A fresh HubServer for one test, with huggingface_hub pointed at it (see the module docstring)."""
    server = HubServer().start()
    server.install(monkeypatch, tmp_path / "hf_home")
    yield server
    server.stop()
