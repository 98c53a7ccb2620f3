"""The Inspect tab: evaluator records shaped for display, from runs written straight into a store.

Runs and records go in through ``Store.add_run`` (no evaluator runs), shaped like what
``evalhub eval --suite robustness|safety|explain`` stores; the app is launched once and its
endpoints driven with gradio_client (STYLE habit 8).
"""

from __future__ import annotations

import math
import socket

import pandas as pd
import pytest

from hub.results import MetricResult
from hub.store import RunRecord, Store, VariantRecord
from hub.ui import inspect_tab as tab
from hub.ui.records import (EXPLAIN, FAIRNESS, ROBUSTNESS, attribution_spans, edit_summary, example_choices,
                            flagged_frame, normalise, robustness_frame, scores_frame,
                            section_runs, word_diff)

LABELS = ["money", "music", "sport"]
VARIANT = "tiny-rec-0001"
OTHER = "tiny-rec-0002"

FLIP = {"type": "flip", "idx": 4, "perturbation": "char_noise", "text": "the band played a new song",
        "perturbed": "the bnad played a new song", "label": "music", "before": "music", "after": "sport"}
ATTACK_WON = {"type": "attack", "idx": 7, "text": "bank shares rose", "perturbed": "depository shares rose",
              "label": "money", "before": "money", "after": "music", "success": True, "queries": 9,
              "words_changed": 0.3333}
ATTACK_LOST = {**ATTACK_WON, "idx": 8, "perturbed": "bank shares rose", "after": "money", "success": False,
               "queries": 50, "words_changed": 0.0}
SWAP = {"idx": 2, "axis": "gender", "target": "female", "original": "He said his team won the match.",
        "counterfactual": "She said her team won the match.", "swaps": [["He", "She"], ["his", "her"]],
        "prediction": "sport", "counterfactual_prediction": "money", "dp": 0.4125}
EXPLAINED = [
    {"idx": 3, "text": "goal scored late", "label": "sport", "prediction": "sport", "probability": 0.875,
     "words": ["goal", "scored", "late"],
     "attributions": {"ig": [0.4, -0.2, 0.1], "occlusion": [0.02, None, -0.01]},
     "scores": {"comprehensiveness/ig": 0.31234567, "sufficiency/ig": 0.05, "tau_loo/ig": 0.5,
                "ig_completeness_gap": 0.001, "comprehensiveness/occlusion": 0.25, "sufficiency/occlusion": None}},
    {"idx": 9, "text": "album chart", "label": "music", "prediction": "money", "probability": None,
     "words": ["album", "chart"], "attributions": {"ig": [0.0, 0.0], "occlusion": [0.1, 0.3]}, "scores": {}},
]


def add_variant(store: Store, variant_id: str, created_at: float) -> None:
    store.add_variant(VariantRecord(
        id=variant_id, name=variant_id.replace("-000", "-v"), task="text-classification", base_model="tiny",
        peft_method="none", labels=LABELS, dataset={"source": "fixture"}, peft_config={}, hyperparameters={},
        run_config={}, config_hash="cfg", seed=7, versions={}, created_at=created_at))


def add_run(store: Store, variant_id: str, suite: str, engine: str, created_at: float, metrics: list[str],
            records: dict[str, list[dict]] | None = None, steps: list | None = None) -> str:
    run = RunRecord(variant_id=variant_id, engine=engine, suite=suite, dataset="fixture", split="test",
                    data_hash="h", config_hash="cfg", seed=7, versions={}, n_examples=30, duration_s=0.1,
                    created_at=created_at, suite_steps=steps or [])
    return store.add_run(run, [MetricResult(name, 0.25) for name in metrics], [], records)


@pytest.fixture
def store(tmp_path, db_url) -> Store:
    """The store of these tests, once on SQLite and once on PostgreSQL (``db_url``)."""
    return Store(tmp_path / "home", db=db_url)


@pytest.fixture
def runs(store: Store) -> dict[str, str]:
    """VARIANT: an old robustness run with flips, a newer one where nothing flipped, a safety run
    on an engine, an explain run, and a default-suite run; OTHER: no records at all."""
    add_variant(store, VARIANT, 100.0)
    add_variant(store, OTHER, 200.0)
    return {
        "old": add_run(store, VARIANT, "robustness", "torch-fp32", 1000.0, ["accuracy", "clean_accuracy", "flip_rate"],
                       {"robustness": [FLIP, ATTACK_LOST, ATTACK_WON]},
                       [{"evaluator": "classification", "options": {}, "metrics": ["accuracy"]},
                        {"evaluator": "robustness", "options": {"severity": 0.3},
                         "metrics": ["clean_accuracy", "flip_rate"]}]),
        "held": add_run(store, VARIANT, "robustness", "torch-fp32", 2000.0, ["accuracy", "clean_accuracy"]),
        "safety": add_run(store, VARIANT, "safety", "ort-int8-abc", 3000.0,
                          ["fairness_coverage", "fairness_flip_rate", "toxicity_rate", "pii_rate"],
                          {"fairness": [SWAP],
                           "toxicity": [{"idx": 0, "source": "inputs", "toxicity": 0.01},
                                        {"idx": 5, "source": "inputs", "toxicity": 0.9, "text": "mail x@y.z, idiot"}],
                           "pii": [{"idx": 5, "source": "inputs", "types": ["email"], "spans": [],
                                    "redacted": "mail [EMAIL], idiot"},
                                   {"idx": 1, "source": "inputs", "types": ["phone"], "spans": [],
                                    "redacted": "call [PHONE]"}]}),
        "explain": add_run(store, VARIANT, "explain", "torch-fp32", 4000.0, ["comprehensiveness/ig"],
                           {"explain": EXPLAINED}),
        "default": add_run(store, VARIANT, "default", "torch-fp32", 5000.0, ["accuracy"]),
        "other": add_run(store, OTHER, "default", "torch-fp32", 6000.0, ["accuracy"]),
    }


# -- plain shaping --------------------------------------------------------------------------------
def test_word_diff_marks_replaced_words_and_whitespace():
    assert word_diff("the big dog ran", "the red dog  ran") == [
        ("the ", None), ("big", "original"), ("red", "perturbed"), (" dog", None),
        (" ", "original"), ("  ", "perturbed"), ("ran", None)]
    assert word_diff("He won.", "She won.", "original", "counterfactual") == [
        ("He", "original"), ("She", "counterfactual"), (" won.", None)]
    assert word_diff("same text", "same text") == [("same text", None)]


@pytest.mark.parametrize(("before", "after"), [
    ("It is a shock.", "It is ashock."), ("a b c", ""), ("", "new words"), ("x  y\tz", "x y\nz w")])
def test_word_diff_rebuilds_both_texts(before, after):
    spans = word_diff(before, after)
    assert "".join(t for t, tag in spans if tag != "perturbed") == before
    assert "".join(t for t, tag in spans if tag != "original") == after


def test_edit_summary_names_edits_and_caps_them():
    assert edit_summary("the big dog ran", "the red dog quickly ran") == "big → red; +quickly"
    assert edit_summary("a tense derby", "a\ttense  derby") == "space → tab; space → 2 spaces"
    assert edit_summary("one two three", "one three") == "−two"
    assert edit_summary("a b c d e", "A B C D E") == "a → A; b → B; c → C; … 2 more"


def test_normalise_scales_by_the_largest_magnitude():
    assert normalise([0.002, -0.004, None, 0.001, math.nan]) == [0.5, -1.0, None, 0.25, None]
    assert normalise([0.0, 0.0]) == [0.0, 0.0]
    assert normalise([]) == []


def test_attribution_spans_and_score_table():
    assert attribution_spans(EXPLAINED[0], "ig") == [("goal", 1.0), (" ", None), ("scored", -0.5), (" ", None),
                                                     ("late", 0.25)]
    assert attribution_spans(EXPLAINED[0], "occlusion")[2] == ("scored", None)
    frame = scores_frame(EXPLAINED[0])
    assert list(frame.columns) == ["score", "better", "ig", "occlusion"]
    assert frame.values.tolist() == [["comprehensiveness", "higher", 0.3123, 0.25],
                                     ["sufficiency", "lower", 0.05, None],
                                     ["tau_loo", "higher", 0.5, None],
                                     ["completeness_gap", "lower", 0.001, None]]


def test_robustness_frame_keeps_flips_and_successful_attacks():
    frame = robustness_frame([FLIP, ATTACK_LOST, ATTACK_WON])
    assert frame.values.tolist() == [[0, 4, "char_noise", "music", "music", "sport", "band → bnad"],
                                     [2, 7, "attack", "money", "money", "music", "bank → depository"]]


def test_flagged_texts_are_redacted_and_merged():
    frame = flagged_frame([{"idx": 5, "source": "inputs", "toxicity": 0.9, "text": "mail x@y.z, idiot"},
                           {"idx": 6, "source": "inputs", "toxicity": 0.2}],
                          [{"idx": 5, "source": "inputs", "types": ["email"], "redacted": "mail [EMAIL], idiot"},
                           {"idx": 1, "source": "inputs", "types": ["card", "phone"], "redacted": "[CARD] [PHONE]"}])
    assert frame.values.tolist() == [[1, "inputs", "PII: card, phone", None, "[CARD] [PHONE]"],
                                     [5, "inputs", "toxic, PII: email", 0.9, "mail [EMAIL], idiot"]]
    assert "x@y.z" not in frame.to_string()


def test_example_choices_mark_wrong_predictions():
    assert example_choices(EXPLAINED) == [("✓ example 3: sport → sport (0.88) · goal scored late", 0),
                                          ("✗ example 9: music → money · album chart", 1)]


# -- views over a store ---------------------------------------------------------------------------------
def test_section_runs_are_the_runs_that_ran_the_evaluator_newest_first(store, runs):
    assert [r["id"] for r in section_runs(store, VARIANT, ROBUSTNESS)] == [runs["held"], runs["old"]]
    assert [r["id"] for r in section_runs(store, VARIANT, FAIRNESS)] == [runs["safety"]]
    assert [r["id"] for r in section_runs(store, VARIANT, EXPLAIN)] == [runs["explain"]]
    assert section_runs(store, OTHER, ROBUSTNESS) == [] and section_runs(store, None, ROBUSTNESS) == []


def test_newest_robustness_run_wins_even_when_nothing_flipped(store, runs):
    view = tab.robustness_view(store, VARIANT)
    assert view.run == runs["held"] and [value for _, value in view.runs] == [runs["held"], runs["old"]]
    assert "engine torch-fp32" in view.runs[0][0] and "suite robustness" in view.runs[0][0]
    assert "0 perturbation flips" in view.notice and "Nothing to show: the model held" in view.notice
    assert "(suite `robustness`, test split" in view.notice     # a run without options says none
    assert not view.found and view.table.empty

    old = tab.robustness_view(store, VARIANT, runs["old"])
    assert old.found and old.table["#"].tolist() == [0, 2]
    assert "1 perturbation flip of a correct prediction, 1 of 2 attacks succeeded" in old.notice
    assert "(suite `robustness`, robustness severity=0.3, test split" in old.notice
    assert old.heading.startswith("**Example 4**, perturbation `char_noise`")
    assert old.spans == [("the ", None), ("band", "original"), ("bnad", "perturbed"), (" played a new song", None)]
    heading, spans = tab.robustness_row(store, runs["old"], 2)
    assert "attack (9 queries, 33% of words changed, succeeded)" in heading
    assert spans[0] == ("bank", "original") and spans[1] == ("depository", "perturbed")


@pytest.mark.parametrize(("view", "suite"), [
    (tab.robustness_view, "robustness"), (tab.fairness_view, "safety"), (tab.explain_view, "explain")])
def test_empty_states_say_which_command_fills_them(store, runs, view, suite):
    shown = view(store, OTHER)
    assert shown.run is None and shown.runs == [] and not shown.found
    assert f"`evalhub eval {OTHER} --suite {suite}` (or `--suite full`)" in shown.notice
    assert "evalhub demo" in view(store, None).notice


def test_fairness_view_shows_swaps_and_flagged_texts(store, runs):
    view = tab.fairness_view(store, VARIANT)
    assert view.run == runs["safety"] and "engine ort-int8-abc" in view.runs[0][0]
    assert view.table.values.tolist() == [
        [0, 2, "gender", "female", "He → She, his → her", "sport", "money", 0.4125]]
    assert "|Δp| 0.412" in view.heading
    assert [s for s in view.spans if s[1]] == [("He", "original"), ("She", "counterfactual"),
                                               ("his", "original"), ("her", "counterfactual")]
    assert view.extra["flagged"]["example"].tolist() == [1, 5]
    assert view.extra["flagged_notice"].startswith("2 texts flagged")
    assert tab.flagged_notice({"fairness_coverage": 0.1}, pd.DataFrame()).startswith("Toxicity and PII were not scored")


def test_explain_view_and_explanation(store, runs):
    view = tab.explain_view(store, VARIANT)
    assert view.run == runs["explain"] and view.found
    assert view.extra["methods"] == ["ig", "occlusion"] and len(view.extra["examples"]) == 2
    assert view.spans == attribution_spans(EXPLAINED[0], "ig")
    heading, spans, scores = tab.explanation(store, runs["explain"], 1, "occlusion")
    assert heading.startswith("**Example 9**, label **music**, predicted **money**.")
    assert spans == [("album", 0.3333), (" ", None), ("chart", 1.0)]
    assert scores.empty
    assert tab.explanation(store, runs["explain"], 0, "no-such-method")[1] == view.spans  # falls back to the first
    assert tab.explanation(store, None, None, None)[1] == []


def test_default_variant_is_the_newest_with_records(store, runs):
    choices = tab.variant_choices(store)
    assert [v for _, v in choices] == [OTHER, VARIANT]
    assert tab.default_variant(store, choices) == VARIANT


def test_select_position_reads_the_row_number():
    import gradio as gr

    evt = gr.SelectData(None, {"index": [1, 3], "value": "x", "row_value": [2, 7, "attack"]})
    assert tab._select_position(evt) == 2


# -- the app -----------------------------------------------------------------------------------------
def test_app_has_the_inspect_tab_and_serves_records(store, runs):
    from gradio_client import Client

    from hub.ui.app import build_app

    demo = build_app(store)
    labels = {c.get("props", {}).get("label") for c in demo.config["components"]}
    assert {"Inspect", "Robustness", "Fairness & safety", "Explanations"} <= labels
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        heading, spans, scores = client.predict(runs["explain"], 0, "ig", api_name="/explanation")
        assert heading.startswith("**Example 3**")
        assert [(t["token"], t["class_or_confidence"]) for t in spans] == attribution_spans(EXPLAINED[0], "ig")
        assert scores["headers"] == ["score", "better", "ig", "occlusion"]
        notice, table, heading, diff = client.predict(VARIANT, runs["old"], api_name="/robustness_records")
        assert diff[:2] == [{"token": "the ", "class_or_confidence": None},
                            {"token": "band", "class_or_confidence": "original"}]
        assert runs["old"] in notice and [row[0] for row in table["data"]] == [0, 2]
    finally:
        demo.close()
