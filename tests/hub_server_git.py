"""The test Hub server's storage: repos as git-like snapshots, kept in memory.

Each commit is a full snapshot (path -> Blob) with a sha1 oid, a parent and a message; branches
and pull requests (``refs/pr/N``) point at commits. Blob oids are computed as git does
(``sha1(b"blob <len>\\0" + content)``); an LFS file's oid is the oid of its pointer file, as on
the Hub. Used by tests/hub_server.py; nothing here speaks HTTP.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

LFS_SIZE = 10 * 1024 * 1024  # the Hub stores files from 10 MB up in LFS
# Suffixes of the Hub's default .gitattributes (LFS whatever their size).
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gz", ".h5", ".joblib", ".mlmodel", ".model",
    ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst", ".engine", ".plan",
)
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
_counter = itertools.count(1)


def git_blob_oid(data: bytes) -> str:
    """The git blob oid of ``data``: sha1 over the ``blob <size>\\0`` header and the content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The LFS pointer file git stores in place of an LFS file's content."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def wants_lfs(path: str, size: int, sample: bytes) -> bool:
    """The Hub's choice of upload mode: LFS for large files, LFS-tracked suffixes and binary content."""
    return size >= LFS_SIZE or path.lower().endswith(LFS_SUFFIXES) or b"\0" in sample


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class Blob:
    """A file's content and whether it is stored in LFS."""

    data: bytes
    lfs: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def oid(self) -> str:
        """The git oid: of the content, or of the pointer file for an LFS file."""
        return git_blob_oid(lfs_pointer(self.sha256, self.size) if self.lfs else self.data)

    @property
    def upload_oid(self) -> str:
        """The oid preupload reports: the sha256 for LFS files, the git oid otherwise (what the client compares)."""
        return self.sha256 if self.lfs else self.oid

    def entry(self, path: str) -> dict:
        """The file's tree / paths-info entry as the Hub writes it (never an xetHash)."""
        out = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs:
            pointer = lfs_pointer(self.sha256, self.size)
            out["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        return out


@dataclass
class Commit:
    """One snapshot of a repo."""

    oid: str
    parent: str | None
    message: str
    files: dict[str, Blob]
    ref: str
    date: str = field(default_factory=now_iso)

    def folders(self) -> set[str]:
        """Every folder that holds a file of this snapshot."""
        out = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return out

    def folder_entry(self, folder: str) -> dict:
        inside = sorted((p, b.oid) for p, b in self.files.items() if p.startswith(folder + "/"))
        return {"type": "directory", "oid": hashlib.sha1(repr(inside).encode()).hexdigest(), "size": 0, "path": folder}

    def tree(self, path: str, recursive: bool) -> list[dict] | None:
        """Entries under ``path`` ("" for the root), or None when ``path`` is not a folder."""
        if path and path not in self.folders():
            return None
        prefix = path + "/" if path else ""
        names = [p for p in sorted(set(self.files) | self.folders()) if p.startswith(prefix)]
        if not recursive:
            names = [p for p in names if "/" not in p[len(prefix):]]
        return [self.files[p].entry(p) if p in self.files else self.folder_entry(p) for p in names]

    def path_info(self, path: str) -> dict | None:
        if path in self.files:
            return self.files[path].entry(path)
        return self.folder_entry(path) if path in self.folders() else None


@dataclass
class Repo:
    """A repo: its commits, branches (name -> commit oid) and pull requests (refs/pr/N -> commit oid)."""

    repo_type: str
    repo_id: str
    private: bool = False
    sdk: str | None = None
    commits: dict[str, Commit] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    branches: dict[str, str] = field(default_factory=dict)
    prs: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)

    def __post_init__(self):
        files = {".gitattributes": Blob(GITATTRIBUTES)}
        self.commit("main", None, "initial commit", files)

    def resolve(self, revision: str) -> Commit | None:
        """The commit a branch name, refs/heads/NAME, refs/pr/N or a full commit oid points at."""
        name = revision.removeprefix("refs/heads/")
        if name in self.branches:
            return self.commits[self.branches[name]]
        match = re.fullmatch(r"refs/pr/(\d+)", revision)
        if match and 0 < int(match[1]) <= len(self.prs):
            return self.commits[self.prs[int(match[1]) - 1]]
        return self.commits.get(revision)

    def commit(self, ref: str, parent: str | None, message: str, files: dict[str, Blob]) -> Commit:
        """Record a snapshot on ``ref`` (a branch name or refs/pr/N) and move the ref to it."""
        seed = f"{self.repo_id}\0{ref}\0{parent}\0{message}\0{next(_counter)}\0"
        oid = hashlib.sha1((seed + repr(sorted((p, b.oid) for p, b in files.items()))).encode()).hexdigest()
        commit = Commit(oid, parent, message, dict(files), ref)
        self.commits[oid] = commit
        self.order.append(oid)
        match = re.fullmatch(r"refs/pr/(\d+)", ref)
        if match:
            number = int(match[1])
            self.prs[number - 1:number] = [oid]
        else:
            self.branches[ref] = oid
        return commit

    def history(self, revision: str = "main") -> list[Commit]:
        """The commits reachable from ``revision``, newest first."""
        out, commit = [], self.resolve(revision)
        while commit is not None:
            out.append(commit)
            commit = self.commits.get(commit.parent) if commit.parent else None
        return out
