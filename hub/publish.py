"""``evalhub push`` and ``evalhub push-space``: publish a variant, or an exported Space, on the Hub.

Everything goes through ``huggingface_hub.HfApi``: ``create_repo(exist_ok=True)``, for a
branch ``create_branch(exist_ok=True)``, then one ``create_commit`` of every file
(:func:`hub.hub_files.repo_files`). huggingface_hub asks the Hub first (``preupload``) which
files it already holds with the same content and leaves them out of the commit; when none is
left it makes no commit at all and answers with the branch's current commit. A push compares
that answer with the commit the branch was at before it, so a re-push of unchanged files says
"nothing changed" and returns ``commit: None``.

The store records a push (repo, branch, commit, url, files; :meth:`hub.store.Store.add_push`)
only after the commit succeeded, in one transaction: a push that fails records nothing, and
running it again completes it (files that reached the Hub before the failure are skipped).

The token comes from ``HF_TOKEN`` or the stored login (``huggingface_hub.get_token``) and is
handed to ``HfApi`` only: no message, log line, record or file ever holds it. Every fault of
the Hub is one :class:`~hub.errors.UserError` line (:func:`hub_faults`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from hub.errors import UserError, clean, first_line, quote
from hub.hub_files import engine_folder, repo_files

DEFAULT_BRANCH = "main"


def check_repo_id(repo_id: str, what: str = "--repo-id") -> None:
    """UserError unless ``repo_id`` is a well-formed Hub id (``name`` or ``namespace/name``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserError(f"{what} {quote(repo_id)} is not a Hub repo id ({first_line(exc, 160)}); "
                        "give one like my-org/news-topics") from None


def hub_token() -> str:
    """The token of ``HF_TOKEN`` or of ``hf auth login``; UserError when there is none."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return token


@contextlib.contextmanager
def hub_faults(endpoint: str, repo_id: str) -> Iterator[None]:
    """The Hub's errors (HTTP status, missing repo or branch, a dropped connection) as one line each."""
    from huggingface_hub import errors as hf_errors

    hub = clean(endpoint, 120)
    try:
        yield
    except hf_errors.OfflineModeIsEnabled:
        raise UserError("HF_HUB_OFFLINE is set, so nothing can be pushed; unset it (or set it to 0) and "
                        "push again") from None
    except hf_errors.HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        if status == 401:
            raise UserError(f"{hub} rejected the token (401): set a valid HF_TOKEN or run `hf auth login`") from None
        if status == 403:
            raise UserError(f"the token has no write access to {quote(repo_id)} on {hub} (403): use a token with "
                            "write permission for that namespace, or push to a repo of your own") from None
        if isinstance(exc, hf_errors.RevisionNotFoundError):
            raise UserError(f"{quote(repo_id)} on {hub} has no such revision; check --revision") from None
        if isinstance(exc, hf_errors.RepositoryNotFoundError):
            raise UserError(f"{quote(repo_id)} was not found on {hub} (404); check --repo-id") from None
        raise UserError(f"{hub} answered {status or 'an error'} for {quote(repo_id)}: "
                        f"{first_line(exc, 200)}") from None
    except (hf_errors.HTTPError, ConnectionError, TimeoutError) as exc:   # transport: refused, reset, timed out
        raise UserError(f"the connection to {hub} dropped during the upload ({type(exc).__name__}); nothing was "
                        "recorded; run the same push again to complete it") from None


def default_message(record: Any, engines: list[Any], weights: bool) -> str:
    """``evalhub: variant X with engines Y`` (what a push holds, for the repo's history)."""
    what = f"evalhub: variant {record.id}" + ("" if weights else " (no weights)")
    if engines:
        what += " with engines " + ", ".join(e.id for e in engines)
    return what


def push_variant(store: Any, variant_ref: str, *, repo_id: str, private: bool = False, revision: str | None = None,
                 create_pr: bool = False, engines: tuple[str, ...] | list[str] = (), weights: bool = True,
                 commit_message: str | None = None, log: Any = print) -> dict:
    """Push a variant's card, evaluation results, weights (unless ``weights=False``) and ``engines``
    to ``repo_id`` in one commit; record the push in the store. Returns variant, repo_id, revision,
    commit (None when nothing changed), url, pr_url and files (every path of the push)."""
    record = store.get_variant(variant_ref)
    chosen = [engine_of(store, record, ref) for ref in engines]
    check_repo_id(repo_id)
    token = hub_token()
    files = repo_files(store, record, chosen, weights=weights, repo_id=repo_id)
    if not store.runs(record.id):
        log(f"warning: {record.id} has no evaluation results, so its card has none "
            f"(`evalhub eval {record.id}` scores it); pushing it anyway")
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(token=token)
    branch = revision or DEFAULT_BRANCH
    with hub_faults(api.endpoint, repo_id):
        url = str(api.create_repo(repo_id, private=private, exist_ok=True))
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        before = api.repo_info(repo_id, revision=branch).sha
        log(f"pushing {len(files)} files of {record.id} to {repo_id}@{branch}"
            + "".join(f"; {e.id} under {engine_folder(e)}/" for e in chosen))
        info = api.create_commit(repo_id, [CommitOperationAdd(path, content) for path, content in files.items()],
                                 commit_message=commit_message or default_message(record, chosen, weights),
                                 revision=revision, create_pr=create_pr)
    changed = info.oid != before or bool(info.pr_url)
    made = {"variant": record.id, "repo_id": repo_id, "revision": branch, "commit": info.oid if changed else None,
            "url": url if branch == DEFAULT_BRANCH else f"{url}/tree/{branch}", "pr_url": info.pr_url,
            "files": list(files)}
    if not changed:
        log("nothing changed: the Hub holds these files already; no commit made")
    if changed or not any(p["repo_id"] == repo_id and p["revision"] == branch for p in store.pushes(record.id)):
        # a push whose answer was lost after the Hub committed is recorded by the re-push that finds it done
        store.add_push(record.id, repo_id=repo_id, revision=branch, commit_oid=info.oid, url=made["url"],
                       pr_url=info.pr_url, files=made["files"])
    return made


def engine_of(store: Any, record: Any, ref: str) -> Any:
    """An engine of ``record`` by id, prefix or backend; UserError for an engine of another variant."""
    try:
        return store.get_engine(ref, variant_id=record.id)
    except UserError:
        try:
            other = store.get_engine(ref)
        except UserError:
            raise UserError(f"--engine {quote(ref)}: {record.id} has no such engine; its engines: "
                            f"{', '.join(e.id for e in store.list_engines(record.id)) or 'none built yet'}") from None
        raise UserError(f"--engine {quote(ref)} is an engine of {other.variant_id}, not of {record.id}; push it "
                        f"with that variant") from None


# -- Spaces -------------------------------------------------------------------------------------
def check_space_folder(folder: Path) -> None:
    """UserError unless ``folder`` was made by ``evalhub export-space``: app.py and a README.md whose
    front matter says ``sdk: gradio``."""
    from huggingface_hub import SpaceCard

    shown = quote(folder, 120)
    if not folder.is_dir():
        raise UserError(f"{shown} is not a folder; give the folder `evalhub export-space` wrote")
    readme = folder / "README.md"
    if not (folder / "app.py").is_file() or not readme.is_file():
        raise UserError(f"{shown} has no app.py and README.md, so it is not a Space folder; make one with "
                        "`evalhub export-space VARIANT OUT_DIR`")
    try:
        sdk = SpaceCard.load(readme).data.get("sdk")
    except Exception as exc:   # huggingface_hub raises ValueError/YAMLError for a malformed front matter
        raise UserError(f"{shown}: its README.md front matter does not parse ({first_line(exc, 120)}); "
                        "export the Space again") from None
    if sdk != "gradio":
        raise UserError(f"{shown}: its README.md says sdk {quote(sdk)}, not 'gradio'; this pushes Spaces made by "
                        "`evalhub export-space`")


def push_space(space_dir: str | Path, *, repo_id: str, private: bool = False) -> dict:
    """Upload a folder made by ``evalhub export-space`` as a Gradio Space, in one commit.
    Returns repo_id, url and commit (None when nothing changed)."""
    folder = Path(space_dir)
    check_space_folder(folder)
    check_repo_id(repo_id)
    from huggingface_hub import HfApi

    api = HfApi(token=hub_token())
    with hub_faults(api.endpoint, repo_id):
        url = str(api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True))
        before = api.repo_info(repo_id, repo_type="space").sha
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="space",
                                 commit_message=f"evalhub: Space exported to {folder.name}",
                                 ignore_patterns=["__pycache__/*", "*.pyc", ".git/*"])
    return {"repo_id": repo_id, "url": url, "commit": info.oid if info.oid != before else None}
