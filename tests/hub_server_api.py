"""The test Hub server's endpoints: what the unmodified ``huggingface_hub.HfApi`` calls, answered as the Hub does.

Each handler takes the server (tests/hub_server.py ``HubServer``) and a ``Request`` and returns a
``Response`` or raises ``HubError`` (a Hub-style error: JSON ``{"error": ...}`` with the
``X-Error-Code`` / ``X-Error-Message`` headers huggingface_hub maps to its own error classes).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import yaml

from tests.hub_server_git import LFS_SIZE, Blob, Repo, wants_lfs

PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
DROP = object()  # a handler's answer meaning: close the connection without answering


@dataclass
class Request:
    method: str
    path: str  # raw (still quoted) path, no query
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    token: str | None  # "write", "read", "bad" or None

    def json(self):
        return json.loads(self.body or b"{}")

    def flag(self, name: str) -> bool:
        return (self.query.get(name) or ["0"])[0].lower() in ("1", "true")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    """An error answered the Hub's way."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}

    def response(self) -> Response:
        headers = {"Content-Type": "application/json", "X-Error-Message": self.message}
        if self.code:
            headers["X-Error-Code"] = self.code
        return Response(self.status, json.dumps({"error": self.message, **self.extra}).encode(), headers)


def as_json(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})


def repo_url(hub, repo: Repo) -> str:
    return f"{hub.endpoint}/{PREFIXES[repo.repo_type]}{repo.repo_id}"


# --- access -----------------------------------------------------------------------------------

def require_token(req: Request) -> None:
    if req.token is None:
        raise HubError(401, "Invalid username or password.")


def require_write(hub, req: Request, namespace: str) -> None:
    """Writes need the write token, into the user's or its organisation's namespace."""
    require_token(req)
    if req.token != "write":
        raise HubError(403, "This token is read-only: it cannot write to the Hub")
    if namespace not in (hub.user, hub.org):
        raise HubError(403, f"You don't have the rights to write to the namespace {namespace}")


def get_repo(hub, req: Request, repo_type: str, repo_id: str) -> Repo:
    """The repo, or 404 RepoNotFound (also for a private repo read without a token)."""
    repo = hub.repos.get((repo_type, repo_id))
    if repo is None or (repo.private and req.token is None):
        raise HubError(404, "Repository not found", "RepoNotFound")
    return repo


def get_commit(repo: Repo, revision: str):
    commit = repo.resolve(revision)
    if commit is None:
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
    return commit


# --- account and repos ------------------------------------------------------------------------

def whoami(hub, req: Request) -> Response:
    require_token(req)
    role = "write" if req.token == "write" else "read"
    return as_json({
        "type": "user", "name": hub.user, "fullname": "Evalhub Tester", "email": None,
        "orgs": [{"type": "org", "name": hub.org, "roleInOrg": "admin"}],
        "auth": {"type": "access_token", "accessToken": {"displayName": f"{role} token", "role": role}},
    })


def create_repo(hub, req: Request) -> Response:
    data = req.json()
    repo_type = data.get("type") or "model"
    namespace, name = data.get("organization") or hub.user, data.get("name", "")
    require_write(hub, req, namespace)
    if repo_type not in PREFIXES or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}", name):
        raise HubError(400, "Invalid repo name or type")
    if repo_type == "space" and not data.get("sdk"):
        raise HubError(400, "A Space needs an sdk")
    repo_id = f"{namespace}/{name}"
    if (repo_type, repo_id) in hub.repos:
        existing = hub.repos[(repo_type, repo_id)]
        raise HubError(409, f"You already created this {repo_type} repo", extra={"url": repo_url(hub, existing)})
    private = data.get("visibility") == "private" or bool(data.get("private"))
    repo = hub.repos[(repo_type, repo_id)] = Repo(repo_type, repo_id, private, data.get("sdk"))
    return as_json({"url": repo_url(hub, repo), "name": repo_id, "id": repo_id})


_FRONT_MATTER = re.compile(r"^---\s*\n(.*?)\n---\s*(\n|$)", re.S)


def card_data(commit) -> dict | None:
    """The README's YAML metadata, as the Hub exposes it under cardData."""
    blob = commit.files.get("README.md")
    match = _FRONT_MATTER.match(blob.data.decode("utf-8", "replace")) if blob else None
    try:
        data = yaml.safe_load(match[1]) if match else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def repo_info(hub, req: Request, repo: Repo, revision: str) -> Response:
    commit = get_commit(repo, revision)
    blobs = req.flag("blobs")
    siblings = []
    for path, blob in sorted(commit.files.items()):
        sibling = {"rfilename": path}
        if blobs:
            sibling.update(size=blob.size, blobId=blob.oid)
            if blob.lfs:
                sibling["lfs"] = blob.entry(path)["lfs"] | {"sha256": blob.sha256}
        siblings.append(sibling)
    card = card_data(commit)
    info = {
        "id": repo.repo_id, "_id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid,
        "private": repo.private, "gated": False, "disabled": False, "lastModified": commit.date,
        "createdAt": repo.created_at, "siblings": siblings, "tags": [], "likes": 0, "downloads": 0,
    }
    if card is not None:
        info["cardData"] = card
        info.update({k: card[k] for k in ("library_name", "pipeline_tag") if k in card})
    if repo.repo_type == "space":
        info["sdk"] = repo.sdk
    return as_json(info)


_PATH_LIKE = re.compile(r"^(/|~|\.{1,2}/|[A-Za-z]:[\\/])|\\")


def validate_yaml(hub, req: Request) -> Response:
    """Parse the README's metadata; reject malformed YAML and dataset names that are local paths."""
    content = req.json().get("content", "")
    match = _FRONT_MATTER.match(content)
    errors = []
    try:
        data = yaml.safe_load(match[1]) if match else {}
    except yaml.YAMLError as exc:
        data, errors = {}, [{"message": f"Invalid YAML: {exc}"}]
    if not isinstance(data, dict):
        data, errors = {}, errors or [{"message": "Metadata must be a YAML mapping"}]
    names = list(data.get("datasets") or []) if isinstance(data.get("datasets"), list) else []
    for model in data.get("model-index") or []:
        for result in (model or {}).get("results") or []:
            dataset = (result or {}).get("dataset") or {}
            names += [dataset.get("name"), dataset.get("type")]
    for name in names:
        if isinstance(name, str) and _PATH_LIKE.search(name):
            errors.append({"message": f'"datasets" must be Hub dataset ids, not a local path ("{name}")'})
    if errors:
        return as_json({"errors": errors, "warnings": []}, status=400)
    return as_json({"errors": [], "warnings": []})


# --- git refs ---------------------------------------------------------------------------------

def create_branch(hub, req: Request, repo: Repo, name: str) -> Response:
    require_write(hub, req, repo.repo_id.split("/")[0])
    if name in repo.branches:
        raise HubError(409, "Reference already exists")
    start = req.json().get("startingPoint") or "main"
    repo.branches[name] = get_commit(repo, start).oid
    return as_json({})


def list_refs(hub, req: Request, repo: Repo) -> Response:
    def ref(name, full, oid):
        return {"name": name, "ref": full, "targetCommit": oid}

    out = {"branches": [ref(b, f"refs/heads/{b}", oid) for b, oid in repo.branches.items()], "converts": [], "tags": []}
    if req.flag("include_prs"):
        out["pullRequests"] = [ref(f"refs/pr/{i}", f"refs/pr/{i}", oid) for i, oid in enumerate(repo.prs, 1)]
    return as_json(out)


def list_commits(hub, req: Request, repo: Repo, revision: str) -> Response:
    get_commit(repo, revision)
    return as_json([
        {"id": c.oid, "authors": [{"user": hub.user}], "date": c.date,
         "title": c.message.split("\n\n")[0], "message": c.message.partition("\n\n")[2]}
        for c in repo.history(revision)
    ])


# --- files ------------------------------------------------------------------------------------

def tree(hub, req: Request, repo: Repo, revision: str, path: str) -> Response:
    """A page of the tree under ``path``; the next page's URL goes in a ``Link: <...>; rel="next"`` header."""
    entries = get_commit(repo, revision).tree(path.strip("/"), req.flag("recursive"))
    if entries is None:
        raise HubError(404, f"{path} does not exist on {revision}", "EntryNotFound")
    start = int((req.query.get("cursor") or ["0"])[0])
    page = entries[start:start + hub.tree_page_size]
    headers = {}
    if start + hub.tree_page_size < len(entries):
        url = f"{hub.endpoint}{req.path}?recursive={str(req.flag('recursive')).lower()}&cursor={start + len(page)}"
        headers["Link"] = f'<{url}>; rel="next"'
    return as_json(page, headers=headers)


def paths_info(hub, req: Request, repo: Repo, revision: str) -> Response:
    commit = get_commit(repo, revision)
    form = parse_qs(req.body.decode())
    infos = [commit.path_info(p.strip("/")) for p in form.get("paths", [])]
    return as_json([info for info in infos if info is not None])


def preupload(hub, req: Request, repo: Repo, revision: str) -> Response:
    """Each file's upload mode, and the oid of the file already at that path (what makes a re-push skip it)."""
    require_write(hub, req, repo.repo_id.split("/")[0])
    commit = get_commit(repo, revision)
    out = []
    for item in req.json().get("files", []):
        sample = base64.b64decode(item.get("sample", ""))
        mode = "lfs" if wants_lfs(item["path"], int(item["size"]), sample) else "regular"
        entry = {"path": item["path"], "uploadMode": mode, "shouldIgnore": False}
        existing = commit.files.get(item["path"])
        if existing is not None:
            entry["oid"] = existing.upload_oid
        out.append(entry)
    return as_json({"files": out, "commitOid": commit.oid})


def lfs_batch(hub, req: Request, repo: Repo) -> Response:
    """LFS batch API: upload (and verify) actions pointing back at this server, none for objects it has."""
    require_write(hub, req, repo.repo_id.split("/")[0])
    objects = []
    for obj in req.json().get("objects", []):
        oid, size = obj["oid"], int(obj["size"])
        item = {"oid": oid, "size": size, "authenticated": True}
        if oid not in hub.lfs or len(hub.lfs[oid]) != size:
            item["actions"] = {
                "upload": {"href": f"{hub.endpoint}/lfs/upload/{oid}", "header": {}},
                "verify": {"href": f"{hub.endpoint}/lfs/verify/{oid}", "header": {}},
            }
        objects.append(item)
    return as_json({"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"})


def lfs_upload(hub, req: Request, oid: str) -> Response:
    """The PUT an LFS upload action points at (a presigned URL on the Hub: no token needed)."""
    if hashlib.sha256(req.body).hexdigest() != oid:
        raise HubError(400, "The uploaded content does not match its sha256")
    hub.lfs[oid] = req.body
    return Response(200, b"", {"ETag": f'"{oid}"'})


def lfs_verify(hub, req: Request, oid: str) -> Response:
    require_token(req)
    if oid not in hub.lfs or len(hub.lfs[oid]) != int(req.json().get("size", -1)):
        raise HubError(404, f"LFS object {oid} was not uploaded")
    return as_json({"success": True})


def resolve(hub, req: Request, repo: Repo, revision: str, path: str) -> Response:
    """A file's bytes with the headers hf_hub_download reads (X-Repo-Commit, ETag, sizes)."""
    commit = get_commit(repo, revision)
    blob = commit.files.get(path)
    if blob is None:
        raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
    headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.oid}"', "Content-Type": "application/octet-stream"}
    if blob.lfs:
        etag = f'"{blob.sha256}"'
        headers.update({"ETag": etag, "X-Linked-Etag": etag, "X-Linked-Size": str(blob.size)})
    return Response(200, blob.data, headers)


# --- commits ----------------------------------------------------------------------------------

def apply_operation(hub, files: dict[str, Blob], line: dict) -> None:
    """Apply one NDJSON operation line of a commit to ``files``."""
    key, value = line.get("key"), line.get("value") or {}
    path = value.get("path", "").strip("/")
    if key == "file":
        data = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
        if len(data) >= LFS_SIZE:
            raise HubError(400, f"{path} is larger than 10 MB: upload it with LFS")
        files[path] = Blob(data)
    elif key == "lfsFile":
        if value.get("oid") not in hub.lfs:
            raise HubError(400, f"LFS object for {path} was not uploaded")
        files[path] = Blob(hub.lfs[value["oid"]], lfs=True)
    elif key == "deletedFile":
        if files.pop(path, None) is None:
            raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
    elif key == "deletedFolder":
        for name in [p for p in files if p.startswith(path + "/")]:
            del files[name]
    else:
        raise HubError(400, f"Unknown commit operation {key!r}")


def commit(hub, req: Request, repo: Repo, revision: str) -> Response:
    """Create a commit on ``revision``, or on a new refs/pr/N when ``create_pr=1``."""
    require_write(hub, req, repo.repo_id.split("/")[0])
    base = get_commit(repo, revision)
    lines = [json.loads(line) for line in req.body.splitlines() if line.strip()]
    header = next((line["value"] for line in lines if line.get("key") == "header"), None)
    if header is None:
        raise HubError(400, "The commit has no header line")
    if header.get("parentCommit") and header["parentCommit"] != base.oid:
        raise HubError(412, "A commit has happened since. Please refresh and try again.")
    files = dict(base.files)
    for line in lines:
        if line.get("key") != "header":
            apply_operation(hub, files, line)
    if hub.drop_commits > 0:
        hub.drop_commits -= 1
        return DROP
    message = header.get("summary", "") + ("\n\n" + header["description"] if header.get("description") else "")
    pr_url = None
    if req.flag("create_pr"):
        ref = f"refs/pr/{len(repo.prs) + 1}"
        pr_url = f"{repo_url(hub, repo)}/discussions/{len(repo.prs) + 1}"
    else:
        branch = revision.removeprefix("refs/heads/")
        ref = branch if branch in repo.branches else (revision if revision.startswith("refs/pr/") else None)
        if ref is None:
            raise HubError(400, f"Cannot commit to {revision}: not a branch")
    new = repo.commit(ref, base.oid, message, files)
    return as_json({"success": True, "commitOid": new.oid, "commitUrl": f"{repo_url(hub, repo)}/commit/{new.oid}",
                    "pullRequestUrl": pr_url, "commitMessage": message})

