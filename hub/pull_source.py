"""Where a pulled model's files come from: a local ``save_pretrained`` folder or a Hub repo.

Only what a safetensors classifier needs is downloaded (config, weights, tokenizer, adapter,
README and evalhub's lineage files): never pickled weights (``*.bin``, ``*.pt``, ``*.pkl``)
and never code. A config that asks for custom code (``auto_map``) is refused before anything
is loaded, so ``trust_remote_code`` stays off and no file of the repo ever runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import UserError, first_line, quote

# what a safetensors sequence classifier, its tokenizer, a PEFT adapter and their lineage need
# (fnmatch: "*" also matches "/", so the patterns reach subfolders such as adapter/)
ALLOW_PATTERNS = [
    "config.json", "*.safetensors", "*.safetensors.index.json", "*adapter_config.json",
    "*tokenizer.json", "*tokenizer_config.json", "*special_tokens_map.json", "*added_tokens.json",
    "*vocab.txt", "*vocab.json", "*merges.txt", "*spiece.model", "*tokenizer.model", "*sentencepiece.bpe.model",
    "README.md", ".eval_results/*", "evalhub.json", "*/config.json",
]
IGNORE_PATTERNS = ["engines/*", "*.py", "*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt"]   # code, pickles
CODE_SUFFIXES = (".py", ".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".h5", ".msgpack")


@dataclass
class Origin:
    """A pulled model's files on disk and where they came from."""

    folder: Path                 # config.json / adapter_config.json live here
    source: str                  # the folder (absolute) or the repo id, as recorded
    repo_id: str | None = None   # None for a local folder
    revision: str | None = None  # as asked (branch, tag or commit)
    commit: str | None = None    # the resolved commit oid of a Hub repo
    content_hash: str = ""       # of the files read (a folder has no commit)
    endpoint: str | None = None

    def lineage(self) -> dict[str, Any]:
        return {"source": self.source, "repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "content_hash": self.content_hash, "endpoint": self.endpoint}


def read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{what}: {path.name} cannot be read as JSON ({first_line(exc)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what}: {path.name} is not a JSON object")
    return data


def files_hash(folder: Path) -> str:
    """16 hex digits over the names and bytes of the files a pull reads (code and pickles left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix not in CODE_SUFFIXES):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def fetch(source: str, revision: str | None) -> Origin:
    """The files of ``source``: an existing folder as it is, else a Hub repo id downloaded."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{quote(source)} is a file; give a save_pretrained folder (with config.json) or a Hub id")
        if revision:
            raise UserError(f"--revision {quote(revision)} is for Hub repos; a local folder is pulled as it is")
        folder = path.resolve()
        return Origin(folder=folder, source=str(folder), content_hash=files_hash(folder))
    if source.startswith((".", "/", "~")) or "\\" in source:
        raise UserError(f"no folder {quote(source)}; give a save_pretrained folder or a Hub id such as org/model")
    return download(source, revision)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's connection errors (httpx2 under huggingface_hub 2.x, httpx under 1.x)."""
    try:
        import httpx2 as client
    except ImportError:
        import httpx as client
    return (client.TransportError, ConnectionError)


def hub_name() -> str:
    from huggingface_hub import constants

    endpoint = constants.ENDPOINT.rstrip("/")
    return "the Hub" if endpoint == "https://huggingface.co" else endpoint


def download(repo_id: str, revision: str | None) -> Origin:
    """Resolve ``revision`` to its commit and download the allowed files of that commit."""
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (HfHubHTTPError, HFValidationError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError, RevisionNotFoundError)
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise UserError(f"{quote(repo_id)} is neither a folder nor a valid Hub repo id (org/name: letters, digits, "
                        "'-', '_', '.')") from None
    where = hub_name()
    try:
        info = HfApi().model_info(repo_id, revision=revision)
        folder = Path(snapshot_download(repo_id, revision=info.sha or revision, allow_patterns=ALLOW_PATTERNS,
                                        ignore_patterns=IGNORE_PATTERNS))
    except RevisionNotFoundError:
        raise UserError(f"model {quote(repo_id)} on {where} has no revision {quote(revision)}; give a branch, tag "
                        "or commit it has") from None
    except RepositoryNotFoundError:
        raise UserError(f"no model {quote(repo_id)} on {where} (or it is private and the token cannot "
                        "read it)") from None
    except (OfflineModeIsEnabled, *_transport_errors()) as exc:
        why = "offline mode is on (HF_HUB_OFFLINE)" if isinstance(exc, OfflineModeIsEnabled) else first_line(exc, 120)
        raise UserError(f"{where} is unreachable ({why}); pull a local save_pretrained folder instead") from None
    except HfHubHTTPError as exc:
        raise UserError(f"{where} refused model {quote(repo_id)}: {first_line(exc, 160)}") from None
    return Origin(folder=folder, source=repo_id, repo_id=repo_id, revision=revision, commit=info.sha or folder.name,
                  content_hash=files_hash(folder), endpoint=constants.ENDPOINT.rstrip("/"))


def refuse_custom_code(folder: Path, what: str) -> None:
    """UserError when a config in ``folder`` asks for code shipped with the model (never run here)."""
    for sub in ("", "merged", "adapter", "tokenizer"):   # the root and evalhub's own subfolders
        for name in ("config.json", "tokenizer_config.json", "adapter_config.json"):
            path = folder / sub / name
            if path.is_file() and read_json(path, what).get("auto_map"):
                raise UserError(f"{what} needs custom code ({Path(sub, name).as_posix()} has auto_map); evalhub never "
                                "runs code shipped with a model (trust_remote_code stays off): pull a model of a "
                                "transformers architecture")


def adapter_folder(folder: Path) -> Path | None:
    """Where the PEFT adapter lies: the folder itself, or its ``adapter/`` (evalhub's layout)."""
    for candidate in (folder, folder / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    return None


def tokenizer_folder(*folders: Path | None) -> Path:
    """The first folder holding tokenizer files (the model's own, ``tokenizer/``, then the base's)."""
    for folder in folders:
        if folder is None:
            continue
        for candidate in (folder, folder / "tokenizer"):
            if (candidate / "tokenizer_config.json").is_file() or (candidate / "tokenizer.json").is_file():
                return candidate
    raise UserError("the model comes without tokenizer files (tokenizer.json or tokenizer_config.json); save its "
                    "tokenizer with save_pretrained into the same folder")
