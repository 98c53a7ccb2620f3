"""The live Demo tab: its pure functions (``hub/ui/live.py``) on stub predictors, and its four
endpoints (/predict batched, /explain, /guard, /perturb) through gradio_client on the tiny model,
with bad input: empty text, a 1 MB paste, an unknown variant, another variant's engine id."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hub.results import MetricResult
from hub.engines.base import EngineRecord
from hub.store import RunRecord, Store
from hub.ui import live
from tests.test_ui import LABELS, VARIANT_ID, add_tiny_variant, free_port

OTHER_ID = "tiny-ui-0002"
OTHER_ENGINE = "onnxruntime-int8-0a1b2c"     # an engine row of OTHER_ID (never loaded)
MEGABYTE = "a" * (1 << 20)


class Keyword:
    """A predictor stand-in: label "sport" when the text has "goal", else "money"; counts calls."""

    labels = ["money", "sport"]
    engine = "stub"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[0.1, 0.9] if "goal" in t else [0.8, 0.2] for t in texts])


class Shouty(Keyword):
    """"sport" when the text has an upper-case word of 2+ letters: casing edits flip it."""

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[0.3, 0.7] if any(w.isupper() and len(w) > 1 for w in t.split()) else [0.7, 0.3]
                         for t in texts])


# -- pure functions ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "problem"), [("", "empty"), ("  \n", "empty"), (None, "empty"), (3, "empty"),
                                               ("x" * 11, "at most 10"), ("x" * 10, None)])
def test_text_problem(text, problem):
    got = live.text_problem(text, 10)
    assert (got is None) if problem is None else (problem in got)


def test_a_batch_answers_each_group_once_and_refuses_only_the_bad_requests():
    stubs = {"a": Keyword(), "b": Keyword()}

    def resolve(variant, engine):
        if variant not in stubs:
            raise live.Refused(f"Unknown variant {variant}.")
        return (variant, engine)

    requests = [("a", "late goal", "torch"), ("a", "", "torch"), ("b", "rates rise", "torch"),
                ("zzz", "goal", "torch"), ("a", "the bank", "torch")]
    answers = live.answer_batch(requests, resolve, lambda key: stubs[key[0]], max_chars=100)
    assert [a.error is None for a in answers] == [True, False, True, False, True]
    assert "empty" in answers[1].error and "Unknown variant" in answers[3].error
    assert stubs["a"].calls == [["late goal", "the bank"]] and stubs["b"].calls == [["rates rise"]]
    assert answers[0].probs == pytest.approx({"money": 0.1, "sport": 0.9})
    assert answers[0].shared == 2 and answers[2].shared == 1 and answers[0].engine == "stub"


def test_a_group_that_fails_to_load_leaves_the_other_groups_answered():
    def load(key):
        if key == "broken":
            raise live.Refused("Engine x could not be loaded.")
        if key == "buggy":
            raise RuntimeError("boom")
        return Keyword()

    answers = live.answer_batch([("broken", "a", None), ("ok", "goal", None), ("buggy", "b", None)],
                                lambda v, e: v, load, max_chars=100)
    assert answers[0].error == "Engine x could not be loaded."
    assert answers[1].probs["sport"] == pytest.approx(0.9)
    assert "failed on this text" in answers[2].error and "boom" not in answers[2].error


def test_occlusion_finds_the_word_that_drives_the_label():
    out = live.explain(Keyword(), "a  late goal  in extra time")
    assert out.label == "sport" and not out.cut
    assert out.words == ["a", "late", "goal", "in", "extra", "time"]
    assert out.scores[2] == pytest.approx(1.0) and all(abs(s) < 1e-9 for i, s in enumerate(out.scores) if i != 2)
    assert "".join(word for word, _ in out.highlighted()) == "a late goal in extra time"


def test_scaled_keeps_sign_and_lies_in_unit_range():
    assert live.scaled(np.array([2.0, -4.0, 1.0])) == pytest.approx([0.5, -1.0, 0.25])
    assert live.scaled(np.zeros(3)) == [0.0, 0.0, 0.0]


def test_the_guard_masks_pii_and_gives_reasons():
    report = live.guard_report("Write to jane.doe@example.com about the match.")
    assert report["flagged"] and report["reasons"] == ["contains an e-mail address"]
    assert report["shown_text"] == "Write to [EMAIL] about the match."
    assert "jane" not in str(report)
    assert not live.guard_report("The match ended in a draw.")["flagged"]


def test_the_playground_counts_flips_from_one_predict_call():
    stub = Shouty()
    played = live.perturbation_table(stub, "the striker scored twice in the league today")
    rows, changed, flips = played.rows, played.changed, played.flips
    assert len(stub.calls) == 1 and played.label == "money" and not played.cut
    assert [r[0] for r in rows] == [live.PERTURBATION_NAMES[n] for n in live.DEMO_PERTURBATIONS]
    assert changed == len(stub.calls[0]) - 1 and changed >= 4
    casing = rows[live.DEMO_PERTURBATIONS.index("casing")]
    assert casing[2] == "sport" and casing[3] == pytest.approx(-0.4) and casing[4] == "✔"
    assert flips == sum(r[4] == "✔" for r in rows) >= 1
    assert "nothing to edit" in rows[live.DEMO_PERTURBATIONS.index("contractions")][1]
    assert played.summary().startswith(f"**{flips} of {changed} perturbations flip the prediction** (from **money**)")


def _run(store: Store, vid: str, split: str, rows: list[tuple[str, str]], at: float) -> None:
    run = RunRecord(variant_id=vid, engine="torch-fp32", suite="default", dataset="fixture", split=split,
                    data_hash="h", config_hash="c", seed=0, versions={}, n_examples=len(rows), duration_s=0.1,
                    created_at=at)
    preds = [{"idx": i, "text": t, "label": lab, "prediction": lab, "probabilities": [1.0]}
             for i, (t, lab) in enumerate(rows)]
    store.add_run(run, [MetricResult("accuracy", 1.0)], preds)


# -- the app through its API ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_store(tiny_model_dir, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("demo") / "home")
    add_tiny_variant(store, tiny_model_dir)
    add_tiny_variant(store, tiny_model_dir, OTHER_ID)
    store.add_engine(EngineRecord(id=OTHER_ENGINE, variant_id=OTHER_ID, backend="onnxruntime", precision="int8",
                                  parity={"passed": False}))
    rows = [(f"music text {i}", "music") for i in range(4)] + [(f"sport text {i}", "sport") for i in range(3)]
    _run(store, VARIANT_ID, "validation", [("validation only", "money")], at=time.time() + 10)
    _run(store, VARIANT_ID, "test", rows, at=time.time() + 5)
    return store


@pytest.fixture(scope="module")
def app(demo_store):
    from gradio_client import Client

    from hub.ui.app import launch
    from hub.ui.app_config import AppConfig

    port = free_port()
    demo = launch(demo_store, port=port, prevent_thread_lock=True,
                  config=AppConfig(default_variant="tiny-topics", max_batch_size=8))
    try:
        yield demo, Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    finally:
        demo.close()


def _torch(store: Store, vid: str = VARIANT_ID):
    from hub.registries import TASKS

    return TASKS.get("text-classification").load_predictor(store, store.get_variant(vid))


BAD = [((VARIANT_ID, "   ", "torch"), "text box is empty"),
       ((VARIANT_ID, MEGABYTE, "torch"), "at most 10,000"),
       (("no-such-variant", "a goal", "torch"), "Unknown variant"),
       ((VARIANT_ID, "a goal", OTHER_ENGINE), "Unknown engine")]


@pytest.mark.parametrize("endpoint", ["/predict", "/explain", "/perturb"])
@pytest.mark.parametrize(("args", "message"), BAD, ids=["empty", "1MB", "variant", "engine"])
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(app, endpoint, args, message):
    _, client = app
    extra = ("occlusion",) if endpoint == "/explain" else ()
    with pytest.raises(Exception, match=message):
        client.predict(*args, *extra, api_name=endpoint)
    assert client.predict(VARIANT_ID, "a goal", "torch", api_name="/predict")["label"] in LABELS


@pytest.mark.parametrize(("text", "message"), [("", "text box is empty"), (MEGABYTE, "at most 10,000")])
def test_the_guard_refuses_empty_and_huge_texts(app, text, message):
    with pytest.raises(Exception, match=message):
        app[1].predict(text, api_name="/guard")


def test_the_four_endpoints_are_listed(app):
    named = set(app[0].get_api_info()["named_endpoints"])
    assert {"/predict", "/explain", "/guard", "/perturb"} <= named


def test_concurrent_predicts_share_a_forward_pass_and_a_bad_one_fails_alone(app, demo_store, monkeypatch):
    sizes, real = [], live.timed_proba

    def slow(predictor, texts):                     # the first pass is slow, so the others queue up
        sizes.append(len(texts))
        time.sleep(1.0 if len(sizes) == 1 else 0.0)
        return real(predictor, texts)

    monkeypatch.setattr(live, "timed_proba", slow)
    client, texts = app[1], [f"the team scored goal number {i}" for i in range(6)]
    results: dict[int, object] = {}

    def ask(i: int, variant: str, text: str) -> None:
        try:
            results[i] = client.predict(variant, text, "torch", api_name="/predict")
        except Exception as exc:     # noqa: BLE001 - the outcome under test
            results[i] = exc

    first = threading.Thread(target=ask, args=(0, VARIANT_ID, texts[0]))
    first.start()
    time.sleep(0.3)
    others = [threading.Thread(target=ask, args=(i, VARIANT_ID, texts[i])) for i in range(1, 6)]
    others.append(threading.Thread(target=ask, args=(6, "no-such-variant", "a goal")))
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(60)
    expected = _torch(demo_store).predict_proba(texts)
    for i in range(6):
        got = {c["label"]: c["confidence"] for c in results[i]["confidences"]}
        assert got == pytest.approx(dict(zip(LABELS, expected[i])), abs=1e-5)
    bad = results[6]
    assert "Unknown variant" in (str(bad) if isinstance(bad, Exception) else bad["label"])
    assert max(sizes) > 1, f"no request shared a forward pass: {sizes}"


def test_explain_by_occlusion_and_integrated_gradients(app):
    client = app[1]
    text = "the striker scored a late goal for the team"
    words, note = client.predict(VARIANT_ID, text, "torch", "occlusion", api_name="/explain")
    assert [w["token"].strip() for w in words] == text.split()
    assert max(abs(w["class_or_confidence"]) for w in words) == pytest.approx(1.0)
    assert "occlusion on engine `torch" in note
    words, note = client.predict(VARIANT_ID, text, "torch", "ig", api_name="/explain")
    assert len(words) == len(text.split()) and all(-1 <= w["class_or_confidence"] <= 1 for w in words)
    assert "integrated gradients on the torch model of **tiny-topics**" in note
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict(VARIANT_ID, text, "torch", "magic", api_name="/explain")


def test_a_long_text_is_explained_on_the_words_the_model_reads(app):
    text = " ".join(["goal"] * 200)                   # the tiny variant reads 32 tokens
    words, note = app[1].predict(VARIANT_ID, text, "torch", "occlusion", api_name="/explain")
    assert 0 < len(words) < 200 and f"only its first {len(words)} words are explained" in note


def test_a_long_text_is_perturbed_on_the_part_the_model_reads(app):
    table, summary = app[1].predict(VARIANT_ID, " ".join(["the striker scored"] * 100), "torch", api_name="/perturb")
    assert "only that part is perturbed" in summary
    assert all(len(row[1]) < 300 for row in table["data"])


def test_the_answered_by_line_names_the_engine_and_its_time(demo_store):
    from types import SimpleNamespace

    from hub.ui.app_config import AppConfig
    from hub.ui.demo_tab import Handlers
    from hub.ui.predictor_cache import PredictorCache

    h = Handlers(SimpleNamespace(cache=PredictorCache(demo_store), store=demo_store, config=AppConfig()))
    labels, = h.predict([VARIANT_ID, VARIANT_ID, "no-such-variant"], ["a goal", "the bank", "x"], ["torch"] * 3)
    assert set(labels[0]) == set(LABELS) and "Unknown variant" in labels[2]
    line = h.answered(VARIANT_ID, "the bank", "torch")
    assert line.startswith(f"Answered by **tiny-topics** (`{VARIANT_ID}`) on engine `torch-fp32` in ")
    assert line.endswith(" ms, one forward pass shared by 2 requests.")
    with pytest.raises(Exception, match="text box is empty"):   # a batch of refusals for one reason raises it
        h.predict([VARIANT_ID], [""], ["torch"])


def test_guard_through_the_api_masks_the_address(app):
    flags, report = app[1].predict("call me on +44 20 7946 0958 after the match", api_name="/guard")
    assert flags.startswith("**Flagged:** contains a phone number") and "[PHONE]" in flags
    assert "7946" not in flags and "7946" not in str(report) and report["flagged"]


def test_perturb_through_the_api_matches_the_predictor(app, demo_store):
    text = "I do not think the striker scored in London"
    table, summary = app[1].predict(VARIANT_ID, text, "torch", api_name="/perturb")
    rows = table["data"]
    assert [r[0] for r in rows] == [live.PERTURBATION_NAMES[n] for n in live.DEMO_PERTURBATIONS]
    predictor = _torch(demo_store)
    base = predictor.predict_proba([text])[0]
    for name, new, prediction, delta, flipped in rows:
        if prediction:
            probs = predictor.predict_proba([new])[0]
            assert prediction == LABELS[int(probs.argmax())]
            assert delta == pytest.approx(probs[base.argmax()] - base[base.argmax()], abs=1e-3)
            assert (flipped == "✔") == (int(probs.argmax()) != int(base.argmax()))
    assert f"perturbations flip the prediction** (from **{LABELS[int(base.argmax())]}**)" in summary


def test_examples_come_from_the_newest_test_run_a_few_per_label(demo_store):
    from hub.ui.demo_tab import EXAMPLES, example_samples

    assert example_samples(demo_store, VARIANT_ID) == [["music text 0"], ["music text 1"],
                                                       ["sport text 0"], ["sport text 1"]]
    assert example_samples(demo_store, OTHER_ID) == [[t] for t in EXAMPLES]   # no stored predictions


def test_the_configured_default_variant_is_the_starting_one(demo_store):
    from hub.ui.demo_tab import default_variant, variant_choices

    choices = variant_choices(demo_store)
    assert default_variant(demo_store, choices, OTHER_ID) == OTHER_ID
    assert default_variant(demo_store, choices, "tiny-topics") in {VARIANT_ID, OTHER_ID}
    assert default_variant(demo_store, choices, "no-such-one") == default_variant(demo_store, choices)
