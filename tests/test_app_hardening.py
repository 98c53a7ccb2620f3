"""The public app holds bounded memory and its errors leak nothing of the store.

The predictor cache is driven with a stub loader (``PredictorCache._load`` patched to count
loads and hand back small objects), over a store that holds variant and engine rows only, so
no model is read. The error tests also go through the launched app with gradio_client: the
Demo's /predict and the Inspect tab's endpoints, which take their own inputs unchecked by gradio.
"""

from __future__ import annotations

import inspect
import threading
import time

import gradio as gr
import pytest

from hub.engines.base import EngineRecord
from hub.errors import UserError
from hub.store import Store, VariantRecord
from hub.ui.predictor_cache import TORCH_MODEL, PredictorCache

A, B = "tiny-cache-aaaa1111", "tiny-cache-bbbb2222"
ORT, OV, OV_B = "onnxruntime-int8-0a1b2c", "openvino-int8-3d4e5f", "openvino-fp32-6a7b8c"
HOSTILE = "nope\n\x1b[31mred\x1b[0m"      # a newline that would forge a line, an ANSI colour


def _variant(vid: str, name: str, created_at: float) -> VariantRecord:
    return VariantRecord(id=vid, name=name, task="text-classification", base_model="tiny", peft_method="none",
                         labels=["a", "b"], dataset={}, peft_config={}, hyperparameters={}, run_config={},
                         config_hash="c", seed=0, versions={}, created_at=created_at)


@pytest.fixture(scope="module")
def rows_store(tmp_path_factory) -> Store:
    """Two variants; A has an ORT engine and a newer OpenVINO one (both passed parity), B one engine."""
    store = Store(tmp_path_factory.mktemp("hardening") / "home")
    store.add_variant(_variant(A, "tiny-a", 1.0))
    store.add_variant(_variant(B, "tiny-b", 2.0))
    for eid, vid, backend, precision, at in [(ORT, A, "onnxruntime", "int8", 3.0), (OV, A, "openvino", "int8", 4.0),
                                             (OV_B, B, "openvino", "fp32", 5.0)]:
        store.add_engine(EngineRecord(id=eid, variant_id=vid, backend=backend, precision=precision,
                                      parity={"passed": True}, created_at=at))
    return store


class Stub:
    """A predictor stand-in: remembers its key, counts close() calls."""

    labels = ["a", "b"]

    def __init__(self, key: tuple[str, str]) -> None:
        self.key, self.engine, self.closed = key, key[1], 0

    def close(self) -> None:
        self.closed += 1

    def predict_proba(self, texts: list[str]) -> list[list[float]]:
        return [[0.25, 0.75] for _ in texts]


@pytest.fixture
def loads(monkeypatch):
    """Patch the loader: each load is recorded (with the peak number running at once) and returns a Stub.

    ``loads.delay`` makes each load take that long; ``loads.gate`` (an Event), when set, makes loads
    wait for it; ``loads.fail`` makes them raise a UserError shaped like the store's."""
    class Recorder:
        def __init__(self) -> None:
            self.keys: list[tuple[str, str]] = []
            self.running = self.peak = 0
            self.delay, self.gate, self.fail = 0.0, None, None
            self.lock = threading.Lock()

        def load(self, cache: PredictorCache, record, engine: str) -> Stub:
            with self.lock:
                self.keys.append((record.id, engine))
                self.running += 1
                self.peak = max(self.peak, self.running)
            try:
                if self.gate is not None:
                    assert self.gate.wait(10), "the test never opened the gate"
                time.sleep(self.delay)
                if self.fail:
                    raise UserError(self.fail)
                return Stub((record.id, engine))
            finally:
                with self.lock:
                    self.running -= 1

    recorder = Recorder()
    monkeypatch.setattr(PredictorCache, "_load", lambda self, record, engine: recorder.load(self, record, engine))
    return recorder


def _together(calls, timeout: float = 20.0) -> list:
    """Run the calls in threads released at once; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a request hung"
    return results


# -- one entry per engine, however it is named ---------------------------------------------------
def test_every_spelling_of_an_engine_shares_one_entry(rows_store, loads):
    cache = PredictorCache(rows_store, max_size=4)
    spellings = [OV, OV[:-2], "openvino-int", "openvino", "best"]   # full id, prefixes, backend, best
    got = [cache.get(ref, engine)[1] for ref in (A, "tiny-a", A[:12]) for engine in spellings]
    assert loads.keys == [(A, OV)]
    assert all(p is got[0] for p in got)
    assert cache.keys() == [(A, OV)]
    for engine in (None, "", TORCH_MODEL):                            # the torch model: one more entry
        cache.get(A, engine)
    assert loads.keys == [(A, OV), (A, TORCH_MODEL)]
    cache.get(A, "onnxruntime")                                       # another engine: another entry
    assert cache.keys() == [(A, OV), (A, TORCH_MODEL), (A, ORT)]


def test_an_engine_of_another_variant_is_not_found(rows_store, loads):
    cache = PredictorCache(rows_store)
    with pytest.raises(gr.Error, match="Unknown engine"):
        cache.get(A, OV_B)
    assert cache.get(B, "openvino")[1].key == (B, OV_B)


# -- bounded: LRU of max_size ---------------------------------------------------------------------
def test_the_cache_is_an_lru_of_max_size(rows_store, loads):
    cache = PredictorCache(rows_store, max_size=2)
    _, first = cache.get(A, TORCH_MODEL)
    cache.get(A, ORT)
    cache.get(A, TORCH_MODEL)                 # a hit makes it the most recent
    _, third = cache.get(A, OV)               # drops ORT, the least recently used
    assert cache.keys() == [(A, TORCH_MODEL), (A, OV)]
    cache.get(B, TORCH_MODEL)                 # drops A's torch model
    assert cache.keys() == [(A, OV), (B, TORCH_MODEL)]
    assert first.closed == 1 and third.closed == 0
    cache.get(A, ORT)                          # a dropped predictor loads again when asked for
    assert loads.keys == [(A, TORCH_MODEL), (A, ORT), (A, OV), (B, TORCH_MODEL), (A, ORT)]


def test_the_cache_never_holds_more_than_max_size(rows_store, loads):
    cache = PredictorCache(rows_store, max_size=3)
    keys = [(A, TORCH_MODEL), (A, ORT), (A, OV), (B, TORCH_MODEL), (B, OV_B)]
    for i in range(20):
        cache.get(*keys[(i * 3) % len(keys)])
        assert len(cache) <= 3
    results = _together([lambda k=k: cache.get(*k) for k in keys * 2])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(cache) == 3


def test_answered_by_reads_the_cache_and_never_loads(rows_store, loads):
    from hub.ui.demo_tab import answered_by

    cache = PredictorCache(rows_store, max_size=1)
    cache.get(A, "openvino")
    assert answered_by(cache, "tiny-a", "openvino") == f"Answered by **tiny-a** (`{A}`) on engine `{OV}`."
    cache.get(B, TORCH_MODEL)                  # A's engine is dropped: the line still comes, with no load
    assert answered_by(cache, A, "best").endswith(f"on engine `{OV}`.")
    assert len(loads.keys) == 2


# -- concurrency ------------------------------------------------------------------------------------
def test_concurrent_requests_for_one_predictor_load_it_once(rows_store, loads):
    loads.delay = 0.5
    cache = PredictorCache(rows_store, max_loads=4)
    refs = [(A, OV), ("tiny-a", "openvino"), (A[:12], "best"), (A, OV[:12])] * 3
    results = _together([lambda r=r: cache.get(*r)[1] for r in refs])
    assert loads.keys == [(A, OV)]
    assert all(r is results[0] for r in results) and isinstance(results[0], Stub)


def test_concurrent_loads_never_exceed_the_cap(rows_store, loads):
    loads.delay = 0.2
    cache = PredictorCache(rows_store, max_size=8, max_loads=2)
    keys = [(A, TORCH_MODEL), (A, ORT), (A, OV), (B, TORCH_MODEL), (B, OV_B)]
    results = _together([lambda k=k: cache.get(*k) for k in keys])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert sorted(loads.keys) == sorted(keys)
    assert loads.peak == 2          # two at once, never more (five requests arrived together)


def test_a_cached_predictor_does_not_wait_behind_a_load(rows_store, loads):
    cache = PredictorCache(rows_store, max_loads=2)
    _, cached = cache.get(A, TORCH_MODEL)
    loads.gate = threading.Event()
    slow = threading.Thread(target=cache.get, args=(B, TORCH_MODEL), daemon=True)
    slow.start()
    try:
        deadline = time.monotonic() + 10
        while loads.running == 0 and time.monotonic() < deadline:   # the slow load has started
            time.sleep(0.01)
        assert loads.running == 1
        started = time.monotonic()
        assert cache.get(A, TORCH_MODEL)[1] is cached
        assert time.monotonic() - started < 5
        assert slow.is_alive()
    finally:
        loads.gate.set()
        slow.join(10)
    assert cache.peek((B, TORCH_MODEL)) is not None


def test_a_failed_load_is_a_short_error_and_is_retried(rows_store, loads):
    loads.delay = 0.5               # the three requests overlap: one load, one error for all
    loads.fail = f"engine '{ORT}': its folder {rows_store.root}/variants/{A}/engines/{ORT} is missing; rebuild it"
    cache = PredictorCache(rows_store)
    results = _together([lambda: cache.get(A, "onnxruntime")] * 3)
    assert len(loads.keys) == 1 and all(isinstance(r, gr.Error) for r in results)
    message = results[0].message
    assert "could not be loaded" in message and str(rows_store.root) not in message and B not in message
    loads.fail = None
    assert cache.get(A, "onnxruntime")[1].key == (A, ORT)     # nothing cached the failure
    assert len(loads.keys) == 2


# -- sizes from arguments and the environment ---------------------------------------------------
def test_sizes_come_from_arguments_then_the_environment(rows_store, monkeypatch):
    monkeypatch.delenv("EVALHUB_APP_CACHE_SIZE", raising=False)
    monkeypatch.delenv("EVALHUB_APP_MAX_LOADS", raising=False)
    cache = PredictorCache(rows_store)
    assert (cache.max_size, cache.max_loads) == (4, 1)
    monkeypatch.setenv("EVALHUB_APP_CACHE_SIZE", " 7 ")
    monkeypatch.setenv("EVALHUB_APP_MAX_LOADS", "3")
    assert (PredictorCache(rows_store).max_size, PredictorCache(rows_store).max_loads) == (7, 3)
    assert PredictorCache(rows_store, max_size=2, max_loads=1).max_size == 2


@pytest.mark.parametrize(("env", "value", "match"), [
    ("EVALHUB_APP_CACHE_SIZE", "lots", r"EVALHUB_APP_CACHE_SIZE='lots': expected a whole number of predictors >= 1"),
    ("EVALHUB_APP_CACHE_SIZE", "0", "EVALHUB_APP_CACHE_SIZE='0'"),
    ("EVALHUB_APP_MAX_LOADS", "1.5", r"EVALHUB_APP_MAX_LOADS='1.5': expected a whole number of loads at once"),
    ("EVALHUB_APP_MAX_LOADS", "2\n", None),     # surrounding whitespace is fine
])
def test_a_bad_size_in_the_environment_fails_the_build(rows_store, monkeypatch, env, value, match):
    from hub.ui.app import build_app

    monkeypatch.setenv(env, value)
    if match is None:
        build_app(rows_store)
        return
    with pytest.raises(UserError, match=match):
        build_app(rows_store)


@pytest.mark.parametrize(("kwargs", "match"), [({"cache_size": 0}, "cache_size='0'"),
                                                ({"max_loads": -1}, "max_loads='-1'"),
                                                ({"cache_size": True}, "cache_size='True'")])
def test_a_bad_size_argument_fails_the_build(rows_store, kwargs, match):
    from hub.ui.app import build_app

    with pytest.raises(UserError, match=match):
        build_app(rows_store, **kwargs)


def test_launch_keeps_its_signature():
    from hub.ui.app import launch

    params = inspect.signature(launch).parameters
    assert list(params)[:6] == ["store", "port", "share", "prevent_thread_lock", "server_name", "cache_size"]
    assert params["port"].default == 7860 and params["server_name"].default == "127.0.0.1"


# -- errors name neither the store's path nor its ids ------------------------------------------------
def _leaks(message: str, store: Store) -> list[str]:
    secrets = [str(store.root), str(store.root.resolve()), A, B, ORT, OV, OV_B, "\n", "\x1b"]
    return [s for s in secrets if s in message]


@pytest.mark.parametrize(("variant", "engine", "start"), [
    (HOSTILE, None, "Unknown variant 'nope\\n\\x1b[31mred\\x1b[0m' (pick one from the Variant list)."),
    ("tiny-cache", None, "Unknown variant 'tiny-cache'"),          # ambiguous: the store lists both
    ("tiny-a", HOSTILE, "Unknown engine 'nope\\n\\x1b[31mred\\x1b[0m' for this variant"),
    ("tiny-a", "openvino-int9-3d4e5f", "Unknown engine"),         # the store says "did you mean"
    ("tiny-a", "x" * 500, "Unknown engine 'xxxx"),
])
def test_unknown_refs_get_a_short_error_without_the_store(rows_store, loads, variant, engine, start):
    with pytest.raises(gr.Error) as info:
        PredictorCache(rows_store).get(variant, engine)
    message = info.value.message
    assert message.startswith(start)
    assert _leaks(message, rows_store) == []
    assert len(message) < 200 and not loads.keys


def test_the_inspect_tab_checks_its_own_inputs(rows_store):
    from hub.ui import inspect_tab as tab

    assert tab.known_variant(rows_store, B) == B and tab.known_variant(rows_store, "") is None
    with pytest.raises(gr.Error) as info:
        tab.known_variant(rows_store, HOSTILE)
    assert info.value.message == "Unknown variant 'nope\\n\\x1b[31mred\\x1b[0m' (pick one from the Variant list)."
    heading, spans, scores = tab.explanation(rows_store, "no-such-run", "not a number", "ig")
    assert (heading, spans, list(scores.columns)) == ("", [], ["score", "better"])


def test_the_app_errors_leak_nothing(rows_store, loads):
    from gradio_client import Client

    from hub.ui.app import launch
    from tests.test_ui import free_port

    port = free_port()
    demo = launch(rows_store, port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        calls = [((HOSTILE, "some text", "torch"), "/predict", "Unknown variant"),
                 (("tiny-a", "some text", HOSTILE), "/predict", "Unknown engine"),
                 ((HOSTILE, None), "/robustness_records", "Unknown variant"),
                 ((HOSTILE, None), "/fairness_records", "Unknown variant")]
        for args, api_name, expected in calls:
            with pytest.raises(Exception) as info:
                client.predict(*args, api_name=api_name)
            message = str(info.value)
            assert expected in message, message
            assert _leaks(message, rows_store) == [], message
        assert client.predict(A, "some text", "best", api_name="/predict")["label"] in Stub.labels
        notice = client.predict(B, HOSTILE, api_name="/fairness_records")[0]   # an unknown run: the newest, if any
        assert notice.startswith("**No fairness") and _leaks(notice, rows_store) == [B]
        assert client.predict(HOSTILE, "x", "ig", api_name="/explanation")[0] == ""
    finally:
        demo.close()


def test_a_text_past_the_demo_limit_is_refused_before_any_load(rows_store, loads):
    from hub.ui.demo_tab import MAX_TEXT_CHARS, classify

    with pytest.raises(gr.Error, match=f"at most {MAX_TEXT_CHARS:,}"):
        classify(PredictorCache(rows_store), A, "word " * MAX_TEXT_CHARS, OV)
    assert loads.keys == []
