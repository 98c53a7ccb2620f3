"""Sharing the app: sign-in, the address it listens on, --share offline, and the app config
(title, tabs, an allow-list of variants that hides the others from every endpoint)."""

from __future__ import annotations

import io

import pytest

from hub.errors import UserError
from tests.test_ui import LABELS, VARIANT_ID, add_tiny_variant, free_port

HIDDEN_ID = "tiny-ui-hidden"


@pytest.fixture(scope="module")
def two_variant_store(tiny_model_dir, tmp_path_factory):
    from hub.store import Store

    store = Store(tmp_path_factory.mktemp("serve") / "home")
    add_tiny_variant(store, tiny_model_dir)
    add_tiny_variant(store, tiny_model_dir, HIDDEN_ID)
    return store


def test_sign_in_is_required_and_checked(two_variant_store):
    from gradio_client import Client

    from hub.ui.app import launch
    from hub.ui.app_config import AppConfig
    from hub.ui.auth import load_auth

    port = free_port()
    demo = launch(two_variant_store, port=port, prevent_thread_lock=True, auth=load_auth(["ann:s3cret pass"], None),
                  config=AppConfig(tabs=["leaderboard", "demo"], login_message="Team members only"))
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(Exception):
            Client(url, verbose=False)                                   # no credentials: refused
        with pytest.raises(Exception):
            Client(url, auth=("ann", "wrong"), verbose=False)
        client = Client(url, auth=("ann", "s3cret pass"), verbose=False, download_files=False)
        out = client.predict(VARIANT_ID, "the band played", api_name="/predict")
        assert {c["label"] for c in out["confidences"]} == set(LABELS)
    finally:
        demo.close()


def test_auth_file_accepts_plain_and_hashed_passwords(tmp_path):
    from hub.ui.auth import hash_password, load_auth

    path = tmp_path / "accounts.txt"
    path.write_text(f"# the team\nann:plain-pw\n\nbob:{hash_password('hashed pw')}\n")
    check = load_auth([], str(path))
    assert check("ann", "plain-pw") and check("bob", "hashed pw")
    assert not check("bob", "plain-pw") and not check("ann", "") and not check("eve", "plain-pw")
    assert "hashed pw" not in path.read_text()          # the file holds only the salted hash


@pytest.mark.parametrize(("text", "message"), [
    ("ann\n", "line 1: expected USER:PASSWORD"),
    ("ann:pw\nann:other\n", "line 2: 'ann' is listed twice"),
    ("# nobody\n", "lists no accounts"),
    ("bob:scrypt$short$x\n", "line 1: the scrypt hash of 'bob' is damaged"),
])
def test_bad_auth_files_are_refused_without_showing_secrets(tmp_path, text, message):
    from hub.ui.auth import load_auth

    path = tmp_path / "accounts.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_auth([], str(path))
    assert "other" not in str(info.value) and "pw" not in str(info.value).replace("PASSWORD", "")


def test_cli_refuses_bad_sign_in_and_warns_on_an_open_host(tmp_path, capsys):
    from hub.cli import main
    from hub.ui.auth import warn_open_host

    assert main(["serve", "--home", str(tmp_path / "h"), "--auth-file", str(tmp_path / "none.txt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["serve", "--home", str(tmp_path / "h"), "--auth", "no-colon"]) == 2
    err = capsys.readouterr().err
    assert "expected USER:PASSWORD" in err and err.count("\n") == 1
    warn_open_host("0.0.0.0")
    assert "without --auth" in capsys.readouterr().err
    warn_open_host("127.0.0.1")
    assert capsys.readouterr().err == ""


def test_hash_password_command_reads_stdin(monkeypatch, capsys):
    from hub.cli import main
    from hub.ui.auth import check_password

    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password", "ann"]) == 0
    line = capsys.readouterr().out.strip()
    user, stored = line.split(":", 1)
    assert user == "ann" and stored.startswith("scrypt$") and "correct horse" not in line
    assert check_password("correct horse", stored) and not check_password("wrong", stored)


def test_share_offline_is_one_clear_line():
    import socket

    from hub.ui.share import check_share

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 443)) == 0:
            pytest.skip("something listens on 127.0.0.1:443, so it cannot stand for an unreachable server")
    with pytest.raises(UserError, match="--share needs internet"):
        check_share("127.0.0.1", timeout=1.0)


def test_app_config_loads_from_its_section_and_checks_keys(tmp_path):
    from hub.ui.app_config import load_app_config

    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    path = tmp_path / "hub.yaml"
    path.write_text("app:\n  title: Team hub\n  tabs: [demo, leaderboard]\n  variants: [tiny-topics]\n"
                    "  logo: logo.png\n  max_text_chars: 500\nother: {kept: for other tools}\n")
    config = load_app_config(path)
    assert config.title == "Team hub" and config.tabs == ["demo", "leaderboard"]
    assert config.max_text_chars == 500 and config.logo == str((tmp_path / "logo.png").resolve())
    for text, message in [("app: {titel: x}", "unknown key 'titel'.*did you mean 'title'"),
                          ("app: {tabs: [leaderbord]}", "unknown tab 'leaderbord'.*did you mean 'leaderboard'"),
                          ("app: {variants: []}", "empty allow-list"),
                          ("app: {max_text_chars: 0}", "at least 1"),
                          ("app: {logo: missing.png}", "is not a file")]:
        path.write_text(text)
        with pytest.raises(UserError, match=message):
            load_app_config(path)


def test_allow_list_hides_other_variants_from_every_endpoint(two_variant_store):
    from gradio_client import Client

    from hub.ui.app import launch
    from hub.ui.app_config import AppConfig, view_of

    config = AppConfig(variants=[VARIANT_ID], title="Team hub")
    view = view_of(two_variant_store, config)
    assert [v.id for v in view.list_variants()] == [VARIANT_ID]
    hidden_runs = [r["id"] for r in two_variant_store.runs(HIDDEN_ID)]
    assert view.runs(HIDDEN_ID) == [] and view.metrics(hidden_runs[0]) == []
    with pytest.raises(UserError, match="no variant"):
        view.get_variant(HIDDEN_ID)
    with pytest.raises(AttributeError, match="read-only"):
        view.add_run

    port = free_port()
    demo = launch(two_variant_store, port=port, prevent_thread_lock=True, config=config)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        board = client.predict(api_name="/leaderboard")
        assert [row[board["headers"].index("variant")] for row in board["data"]] == [VARIANT_ID]
        with pytest.raises(Exception, match="Unknown variant"):
            client.predict(HIDDEN_ID, "the band played", api_name="/predict")
        assert client.predict(VARIANT_ID, "the band played", api_name="/predict")["confidences"]
    finally:
        demo.close()
