"""The test Hub server against the unmodified huggingface_hub client: what push and pull tests rely on."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    constants,
    get_hf_file_metadata,
    get_token,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub_server_git import LFS_SIZE, git_blob_oid


@pytest.fixture
def folder(tmp_path):
    """A folder with small text files, a small .safetensors file and an 11 MB text file (both LFS on the Hub)."""
    root = tmp_path / "upload"
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"labels": ["a", "b"]}')
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (root / "model.safetensors").write_bytes(os.urandom(4096))
    (root / "big.txt").write_bytes(b"x" * (LFS_SIZE + 1024 * 1024))
    return root


def local_files(root) -> dict[str, bytes]:
    root = Path(root)
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_create_repo_then_409_and_exist_ok(hub_server):
    assert not constants.is_offline_mode() and constants.ENDPOINT == os.environ["HF_ENDPOINT"] == hub_server.endpoint
    assert get_token() == hub_server.token and hub_server.token.startswith("hf_")
    api = HfApi()
    url = api.create_repo("evalhub-tester/demo")
    assert url.repo_id == "evalhub-tester/demo" and url.startswith(hub_server.endpoint)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("evalhub-tester/demo")
    assert err.value.response.status_code == 409
    assert api.create_repo("evalhub-tester/demo", exist_ok=True).repo_id == "evalhub-tester/demo"
    assert [c.status for c in hub_server.routes("create_repo")] == [200, 409, 409]
    assert api.whoami()["name"] == "evalhub-tester"


def test_upload_snapshot_and_repush_makes_no_commit(hub_server, folder, tmp_path):
    api = HfApi()
    api.create_repo("evalhub-tester/m")
    info = api.upload_folder(repo_id="evalhub-tester/m", folder_path=folder, commit_message="first")
    assert hub_server.repo("evalhub-tester/m").resolve("main").oid == info.oid
    assert len(hub_server.routes("lfs_upload")) == 2      # the .safetensors and the 11 MB file
    files = hub_server.files("evalhub-tester/m")
    assert {p: files[p] for p in local_files(folder)} == local_files(folder)
    out = snapshot_download("evalhub-tester/m", local_dir=tmp_path / "down")
    assert {p: d for p, d in local_files(out).items() if not p.startswith(".")} == local_files(folder)
    tree = {f.path: f for f in api.list_repo_tree("evalhub-tester/m", recursive=True) if hasattr(f, "size")}
    assert tree["config.json"].blob_id == git_blob_oid(files["config.json"]) and tree["config.json"].lfs is None
    assert tree["model.safetensors"].lfs.size == 4096 and tree["model.safetensors"].xet_hash is None

    commits_before = len(hub_server.routes("commit"))
    again = api.upload_folder(repo_id="evalhub-tester/m", folder_path=folder)
    assert len(hub_server.routes("commit")) == commits_before == 1
    assert again.oid == info.oid
    assert [c.title for c in api.list_repo_commits("evalhub-tester/m")] == ["first", "initial commit"]
    assert len(hub_server.routes("lfs_upload")) == 2


def test_branch_pr_and_download_at_revision(hub_server, folder):
    api = HfApi()
    api.create_repo("evalhub-tester/b")
    main = api.upload_folder(repo_id="evalhub-tester/b", folder_path=folder).oid
    api.create_branch("evalhub-tester/b", branch="dev")
    with pytest.raises(HfHubHTTPError):
        api.create_branch("evalhub-tester/b", branch="dev")
    api.create_branch("evalhub-tester/b", branch="dev", exist_ok=True)
    dev = api.upload_file(path_or_fileobj=b"dev only", path_in_repo="notes.txt", repo_id="evalhub-tester/b",
                          revision="dev")
    assert "notes.txt" not in hub_server.files("evalhub-tester/b")
    path = hf_hub_download("evalhub-tester/b", "notes.txt", revision="dev")
    assert open(path, "rb").read() == b"dev only"
    branches = api.list_repo_refs("evalhub-tester/b").branches
    assert {b.name: b.target_commit for b in branches} == {"main": main, "dev": dev.oid}

    pr = api.upload_file(path_or_fileobj=b"proposal", path_in_repo="notes.txt", repo_id="evalhub-tester/b",
                         create_pr=True)
    assert pr.pr_url.endswith("/discussions/1") and pr.pr_revision == "refs/pr/1"
    assert hub_server.repo("evalhub-tester/b").resolve("main").oid == main
    assert hub_server.files("evalhub-tester/b", "refs/pr/1")["notes.txt"] == b"proposal"
    refs = api.list_repo_refs("evalhub-tester/b", include_pull_requests=True)
    assert [r.ref for r in refs.pull_requests] == ["refs/pr/1"]
    assert api.repo_info("evalhub-tester/b", revision="refs/pr/1").sha == pr.oid


def test_tree_pagination_and_paths_info(hub_server):
    hub_server.tree_page_size = 2
    hub_server.add_files("evalhub-tester/t", {f"d/f{i}.txt": b"%d" % i for i in range(5)} | {"top.txt": b"t"})
    api = HfApi()
    names = [f"d/f{i}.txt" for i in range(5)]
    assert sorted(api.list_repo_files("evalhub-tester/t")) == [".gitattributes", *names, "top.txt"]
    assert len([c for c in hub_server.routes("tree") if "cursor" in c.query]) >= 3
    assert [e.path for e in api.list_repo_tree("evalhub-tester/t", path_in_repo="d")] == names
    infos = api.get_paths_info("evalhub-tester/t", ["top.txt", "d", "missing"])
    assert [(type(i).__name__, i.path) for i in infos] == [("RepoFile", "top.txt"), ("RepoFolder", "d")]


def test_tokens_401_and_403(hub_server):
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=hub_server.bad_token).create_repo("evalhub-tester/x")
    assert err.value.response.status_code == 401 and "Invalid credentials" in str(err.value)
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=hub_server.read_token).create_repo("evalhub-tester/x")
    assert err.value.response.status_code == 403 and "read-only" in str(err.value)
    HfApi().create_repo("evalhub-tester/x")
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(token=hub_server.read_token).upload_file(path_or_fileobj=b"a", path_in_repo="a",
                                                       repo_id="evalhub-tester/x")
    assert err.value.response.status_code == 403
    assert HfApi(token=hub_server.read_token).whoami()["auth"]["accessToken"]["role"] == "read"
    assert [c.token for c in hub_server.routes("create_repo")] == ["bad", "read", "write"]
    assert "a" not in hub_server.files("evalhub-tester/x")


def test_dropped_commit_leaves_repo_unchanged_and_retry_succeeds(hub_server, folder):
    api = HfApi()
    api.create_repo("evalhub-tester/d")
    hub_server.drop_next_commit()
    with pytest.raises(httpx2.TransportError, match="disconnected"):
        api.upload_folder(repo_id="evalhub-tester/d", folder_path=folder)
    assert [c.status for c in hub_server.routes("commit")] == [None]
    assert list(hub_server.files("evalhub-tester/d")) == [".gitattributes"]
    api.upload_folder(repo_id="evalhub-tester/d", folder_path=folder)
    assert local_files(folder).items() <= hub_server.files("evalhub-tester/d").items()
    assert len(hub_server.commits("evalhub-tester/d")) == 2


def test_space_repo_upload(hub_server, tmp_path):
    (tmp_path / "space").mkdir()
    (tmp_path / "space" / "app.py").write_text("import gradio\n")
    api = HfApi()
    url = api.create_repo("evalhub-tester/s", repo_type="space", space_sdk="gradio", private=True)
    assert url.repo_type == "space"
    api.upload_folder(repo_id="evalhub-tester/s", repo_type="space", folder_path=tmp_path / "space")
    assert hub_server.files("evalhub-tester/s", repo_type="space")["app.py"] == b"import gradio\n"
    info = api.space_info("evalhub-tester/s")
    assert info.sdk == "gradio" and info.private
    path = hf_hub_download("evalhub-tester/s", "app.py", repo_type="space")
    assert open(path, "rb").read() == b"import gradio\n"
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).space_info("evalhub-tester/s")


def test_missing_repo_revision_and_file(hub_server):
    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("evalhub-tester/nothing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("evalhub-tester/nothing", "config.json")
    hub_server.add_files("evalhub-tester/r", {"config.json": b"{}"})
    with pytest.raises(RevisionNotFoundError):
        api.model_info("evalhub-tester/r", revision="v9")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("evalhub-tester/r", "config.json", revision="v9")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("evalhub-tester/r", "missing.json")


def test_readme_metadata_is_validated(hub_server):
    api = HfApi()
    api.create_repo("evalhub-tester/card")
    good = "---\nlicense: mit\ndatasets:\n- bbc-news\n---\n# Card\n"
    api.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id="evalhub-tester/card")
    assert api.model_info("evalhub-tester/card").card_data["license"] == "mit"
    bad = "---\ndatasets:\n- /tmp/data/train.csv\n---\n"
    with pytest.raises(ValueError, match="local path"):
        api.upload_file(path_or_fileobj=bad.encode(), path_in_repo="README.md", repo_id="evalhub-tester/card")


def test_file_metadata_headers_as_the_hub_sends_them(hub_server):
    weights, text = os.urandom(2048), b"plain text"
    oid = hub_server.add_files("evalhub-tester/h", {"w.safetensors": weights, "a.txt": text})
    lfs = get_hf_file_metadata(hf_hub_url("evalhub-tester/h", "w.safetensors"))
    assert (lfs.commit_hash, lfs.size, lfs.etag) == (oid, 2048, hashlib.sha256(weights).hexdigest())
    regular = get_hf_file_metadata(hf_hub_url("evalhub-tester/h", "a.txt"))
    assert (regular.size, regular.etag) == (len(text), git_blob_oid(text))


def test_private_dataset_repo_and_deletes(hub_server):
    api = HfApi()
    api.create_repo("evalhub-org/data", repo_type="dataset", private=True)
    ops = [CommitOperationAdd("train.csv", b"text,label\nhi,a\n"), CommitOperationAdd("old/x.txt", b"x")]
    api.create_commit("evalhub-org/data", ops, commit_message="add", repo_type="dataset")
    api.create_commit("evalhub-org/data", [CommitOperationDelete("old/")], commit_message="rm", repo_type="dataset")
    assert sorted(hub_server.files("evalhub-org/data", repo_type="dataset")) == [".gitattributes", "train.csv"]
    assert HfApi(token=hub_server.read_token).dataset_info("evalhub-org/data").private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).dataset_info("evalhub-org/data")
    path = hf_hub_download("evalhub-org/data", "train.csv", repo_type="dataset")
    assert open(path, "rb").read() == b"text,label\nhi,a\n"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("someone-else/model")
    assert err.value.response.status_code == 403
