"""`evalhub demo` serves first: the app is up while training runs, its progress endpoint shows
each stage, and the leaderboard fills in as rows land. The demo runs on the tiny model and a
tiny config here (the real one is the README's main job)."""

from __future__ import annotations

import threading
import time

import pytest
import yaml

from tests.conftest import tiny_config
from tests.test_ui import free_port


def _wait(predicate, timeout: float = 120.0, every: float = 0.2, alive: threading.Thread | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert alive is None or alive.is_alive(), "the demo stopped (its error is in the captured log)"
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")


def _gated_training(monkeypatch) -> threading.Event:
    """Training waits for the returned event, so the test sees the app while a stage runs."""
    from hub import registries

    gate = threading.Event()
    real_get = registries.TASKS.get

    def get(name):
        spec = real_get(name)

        class Gated(type(spec)):
            def train(self, *args, **kwargs):
                assert gate.wait(120), "the test never opened the gate"
                return spec.train(*args, **kwargs)
        return Gated()

    monkeypatch.setattr(registries.TASKS, "get", get)
    return gate


def test_demo_serves_first_and_rows_land_live(tiny_model_dir, tiny_csv, tmp_path, monkeypatch):
    from gradio_client import Client

    from hub.demo import run_demo
    from hub.store import Store
    from hub.ui.app_config import AppConfig

    config = tmp_path / "tiny-full.yaml"
    config.write_text(yaml.safe_dump({**tiny_config(tiny_model_dir, tiny_csv), "name": "tiny-full"}))
    store, port = Store(tmp_path / "home"), free_port()
    gate = _gated_training(monkeypatch)
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(run_demo(
        store, serve={"port": port, "server_name": "127.0.0.1",
                      "config": AppConfig(tabs=["leaderboard"])}, json_out=True, configs=(config,),
        engines=False, block=False)), daemon=True)
    runner.start()
    client = _wait(lambda: _client(Client, port), alive=runner)
    try:
        first = client.predict(api_name="/progress")
        assert not first["finished"]
        assert [s["key"] for s in first["stages"]] == ["train:tiny-full", "score:tiny-full"]
        assert first["stages"][0]["status"] == "running"          # the app is up before training ends
        board = client.predict(api_name="/leaderboard")
        assert board["data"] == []                                # nothing stored yet
        gate.set()
        done = _wait(lambda: (p := client.predict(api_name="/progress"))["finished"] and p, timeout=300)
        assert [s["status"] for s in done["stages"]] == ["done", "done"], done
        assert "step 12/12" in done["stages"][0]["detail"] or done["stages"][0]["detail"].startswith("variant")
        board = client.predict(api_name="/leaderboard")          # the same server, no restart
        rows = [dict(zip(board["headers"], row)) for row in board["data"]]
        assert [r["variant"] for r in rows] == result["variants"]
        assert rows[0]["accuracy"] is not None
    finally:
        runner.join(60)
        if "app" in result:
            result["app"].close()
    assert result["variants"] and (store.root / "logs").is_dir()


def _client(client_cls, port: int):
    try:
        return client_cls(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    except Exception:
        return None


def test_progress_marks_stages_not_reached_as_skipped():
    from hub.ui.progress import Progress

    progress = Progress.of([("a", "first"), ("b", "second"), ("c", "third")])
    progress.start("a", "step 1/3")
    progress.done("a", "variant v1")
    progress.start("b")
    progress.finish("stopped: KeyboardInterrupt")
    stages = {s["key"]: s["status"] for s in progress.to_dict()["stages"]}
    assert stages == {"a": "done", "b": "failed", "c": "skipped"}
    text = progress.markdown()
    assert "variant v1" in text and "stopped: KeyboardInterrupt" in text and "**finished**" in text


def test_quiet_console_sends_library_warnings_to_the_log(tmp_path, capsys):
    import logging
    import warnings

    from hub.demo import quiet_console

    log = tmp_path / "logs" / "demo.log"
    with quiet_console(log):
        warnings.warn("a tracer warning a user cannot act on", UserWarning)
        logging.getLogger("peft.tuners").warning("rank pattern note")
    captured = capsys.readouterr()
    assert "tracer warning" not in captured.err + captured.out
    assert "rank pattern note" not in captured.err + captured.out
    text = log.read_text()
    assert "a tracer warning a user cannot act on" in text and "rank pattern note" in text
    with pytest.warns(UserWarning):          # and the console's own handling is back afterwards
        warnings.warn("after", UserWarning)
