"""The Compare and Model card tabs, driven through the app's API with gradio_client.

Three tiny random variants (tests/test_ui.py's ``add_tiny_variant``) each get a run with stored
per-example predictions on split ``test``: A and B on the same data, C on other data. The
numbers ``/compare`` returns are checked against ``paired_comparison`` on the stored rows.
"""

from __future__ import annotations

import pytest

from hub.results import MetricResult
from evaluators.compare import paired_comparison
from hub.store import RunRecord, Store
from tests.test_card import ENGINE_ID, add_engine_run, add_robustness_run
from tests.test_ui import LABELS, VARIANT_ID, add_tiny_variant, free_port

B_ID, C_ID = "tiny-ui-0002", "tiny-ui-0003"
GOLD = ["money", "music", "sport"] * 8          # 24 examples


def prediction_rows(predictions: list[str]) -> list[dict]:
    return [{"idx": i, "text": f"example text number {i}", "label": y, "prediction": p,
             "probabilities": [1.0 if p == label else 0.0 for label in LABELS]}
            for i, (y, p) in enumerate(zip(GOLD, predictions))]


def add_scored_run(store: Store, variant_id: str, predictions: list[str], data_hash: str, accuracy: float) -> str:
    preds = prediction_rows(predictions)
    run = RunRecord(variant_id=variant_id, engine="torch-fp32", suite="default", dataset="fixture", split="test",
                    data_hash=data_hash, config_hash="cfg0", seed=7, versions={}, n_examples=len(preds),
                    duration_s=0.1)
    return store.add_run(run, [MetricResult("accuracy", accuracy), MetricResult("ece", 0.2, higher_is_better=False)],
                         preds)


@pytest.fixture(scope="module")
def compare_store(tiny_model_dir, tmp_path_factory) -> Store:
    store = Store(tmp_path_factory.mktemp("compare-tab") / "home")
    for variant in (VARIANT_ID, B_ID, C_ID):
        add_tiny_variant(store, tiny_model_dir, variant)
    a = GOLD[:18] + ["sport"] * 6                 # right on 18 + 2 (the last six: two are sport)
    b = GOLD[:12] + ["money"] * 12                # right on 12 + 4
    add_scored_run(store, VARIANT_ID, a, "same-data", 20 / 24)
    add_scored_run(store, B_ID, b, "same-data", 16 / 24)
    add_scored_run(store, C_ID, GOLD, "other-data", 1.0)
    add_robustness_run(store)
    add_engine_run(store, predictions=prediction_rows(["music"] + a[1:]))   # wrong where A is right on idx 0
    return store


@pytest.fixture(scope="module")
def client(compare_store):
    from gradio_client import Client

    from hub.ui.app import launch

    port = free_port()
    demo = launch(compare_store, port=port, prevent_thread_lock=True)
    try:
        yield Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
    finally:
        demo.close()


def _run_with_predictions(store: Store, variant: str) -> str:
    return next(r["id"] for r in store.runs(variant) if store.predictions(r["id"], limit=1))


def test_compare_gives_the_paired_comparison(client, compare_store):
    raw, words, scores, diffs = client.predict(VARIANT_ID, B_ID, "test", api_name="/compare")
    expected = paired_comparison(compare_store.predictions(_run_with_predictions(compare_store, VARIANT_ID)),
                                 compare_store.predictions(_run_with_predictions(compare_store, B_ID))).to_dict()
    assert raw["paired"] == expected
    assert (raw["a"]["variant"], raw["b"]["variant"]) == (VARIANT_ID, B_ID)
    assert expected["accuracy_a"] == pytest.approx(20 / 24) and expected["accuracy_b"] == pytest.approx(16 / 24)
    points = 100 * abs(expected["difference"])
    assert f"B is less accurate by {points:.1f} points" in words
    assert f"McNemar p = {expected['mcnemar_p']:.3g} on 24 paired examples" in words
    card = {row[0]: dict(zip(scores["headers"], row)) for row in scores["data"]}
    assert card["accuracy"]["B − A"] == pytest.approx(16 / 24 - 20 / 24, abs=1e-4)
    assert card["accuracy"]["B vs A"].startswith("▼") and card["ece"]["B vs A"].startswith("=")
    assert [row[0] for row in diffs["data"]] == [d["idx"] for d in expected["disagreements"]]
    first = dict(zip(diffs["headers"], diffs["data"][0]))
    assert first["gold"] == GOLD[first["example"]] and first["A predicts"] != first["B predicts"]


def test_an_engine_row_compares_with_its_torch_model(client, compare_store):
    from hub.ui.compare_tab import row_choices

    refs = [ref for _, ref in row_choices(compare_store)]
    assert {VARIANT_ID, B_ID, C_ID, f"{VARIANT_ID}@{ENGINE_ID}"} == set(refs)
    raw, words, _, diffs = client.predict(VARIANT_ID, f"{VARIANT_ID}@{ENGINE_ID}", "test", api_name="/compare")
    assert (raw["a"]["engine"], raw["b"]["engine"]) == ("torch-fp32", ENGINE_ID)
    assert raw["paired"]["only_a_right"] == 1 and raw["paired"]["only_b_right"] == 0
    assert "B is less accurate by 4.2 points" in words and [row[0] for row in diffs["data"]] == [0]


@pytest.mark.parametrize(("a", "b", "split", "message"), [
    (VARIANT_ID, C_ID, "test", "scored on different data"),
    (VARIANT_ID, "no-such-row", "test", "Unknown row"),
    (VARIANT_ID, B_ID, "validation", "no stored predictions on split"),
])
def test_rows_that_cannot_be_compared_are_clear_errors(client, a, b, split, message):
    with pytest.raises(Exception, match=message):
        client.predict(a, b, split, api_name="/compare")
    assert client.predict(api_name="/leaderboard")["data"]      # still serving


def test_compare_live_answers_for_both_rows(client, compare_store):
    from hub.registries import TASKS

    text = "the band played a new song on tour"
    out_a, out_b, who = client.predict(VARIANT_ID, B_ID, text, api_name="/compare_live")
    for out, variant in ((out_a, VARIANT_ID), (out_b, B_ID)):
        record = compare_store.get_variant(variant)
        predictor = TASKS.get(record.task).load_predictor(compare_store, record)
        expected = dict(zip(predictor.labels, predictor.predict_proba([text])[0]))
        got = {c["label"]: c["confidence"] for c in out["confidences"]}
        assert got == pytest.approx({k: float(v) for k, v in expected.items()}, abs=1e-5)
    assert f"`{VARIANT_ID}`" in who and f"`{B_ID}`" in who and "engine" in who


@pytest.mark.parametrize(("text", "message"), [("  ", "text box is empty"), ("x" * 10_001, "at most 10,000")])
def test_compare_live_refuses_empty_and_long_texts(client, text, message):
    with pytest.raises(Exception, match=message):
        client.predict(VARIANT_ID, B_ID, text, api_name="/compare_live")


def test_card_returns_the_card_text(client, compare_store):
    from hub.card import build_card

    text = client.predict(VARIANT_ID, api_name="/card")
    assert text == build_card(compare_store, VARIANT_ID).text.rstrip("\n")   # gr.Code drops the final newline
    assert "## Limitations" in text and "`typos`" in text
    with pytest.raises(Exception, match="Unknown variant"):
        client.predict("no-such-variant", api_name="/card")


def test_hidden_variants_have_no_card_and_no_row(compare_store):
    from gradio_client import Client

    from hub.ui.app import launch
    from hub.ui.app_config import AppConfig

    port = free_port()
    demo = launch(compare_store, port=port, prevent_thread_lock=True, config=AppConfig(variants=[VARIANT_ID, B_ID]))
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        with pytest.raises(Exception, match="Unknown variant") as caught:
            client.predict(C_ID, api_name="/card")
        assert C_ID in str(caught.value) and VARIANT_ID not in str(caught.value)
        with pytest.raises(Exception, match="Unknown row"):
            client.predict(VARIANT_ID, C_ID, "test", api_name="/compare")
        assert client.predict(VARIANT_ID, B_ID, "test", api_name="/compare")[0]["paired"]["n"] == 24
    finally:
        demo.close()


def test_reload_refreshes_rows_and_cards(compare_store):
    import gradio as gr

    from hub.ui.app import AppContext
    from hub.ui.app_config import AppConfig
    from hub.ui.card_tab import build_card_tab
    from hub.ui.compare_tab import build_compare_tab
    from hub.ui.predictor_cache import PredictorCache

    ctx = AppContext(store=compare_store, cache=PredictorCache(compare_store), config=AppConfig())
    with gr.Blocks():
        compare, card = build_compare_tab(ctx), build_card_tab(ctx)
    (fn, _, _), = compare["reload"]
    a, b, split = fn("gone-row", B_ID, "gone-split")
    refs = [ref for _, ref in a.choices]
    assert a.value == refs[0] and b.value == B_ID and split.value == "test"
    assert f"{VARIANT_ID}@{ENGINE_ID}" in refs
    (fn, _, _), = card["reload"]
    notice, variant, rendered, raw, download = fn(VARIANT_ID)
    assert variant.value == VARIANT_ID and raw.startswith("---\n") and "```yaml" in rendered
    assert open(download, encoding="utf-8").read() == raw and not notice.visible


def test_default_pair_starts_on_two_rows_scored_on_the_same_data(compare_store):
    from hub.ui.compare_tab import default_pair, row_choices

    refs = [ref for _, ref in row_choices(compare_store)]
    hashes = {}
    for run in compare_store.runs():
        if run["split"] == "test":
            ref = run["variant_id"] if run["engine"] == "torch-fp32" else f"{run['variant_id']}@{run['engine']}"
            hashes[ref] = run["data_hash"]
    a, b = default_pair(compare_store, refs, current_a=B_ID)
    assert a == B_ID and b != B_ID and hashes[b] == hashes[B_ID] == "same-data"
    assert default_pair(compare_store, refs, current_a=C_ID) == (C_ID, next(r for r in refs if r != C_ID))
    assert default_pair(compare_store, refs, VARIANT_ID, C_ID) == (VARIANT_ID, C_ID)   # a kept choice stays
    assert default_pair(compare_store, []) == (None, None)
