"""`evalhub compare`: the paired statistics on hand-made predictions, then the command end to end."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from evaluators.compare import PairingError, paired_comparison
from tests.conftest import tiny_config
from tests.test_cli import assert_user_error, evalhub, snapshot


def rows(labels: list[str], predictions: list[str], idx: list[int] | None = None) -> list[dict]:
    idx = list(range(len(labels))) if idx is None else idx
    return [{"idx": i, "text": f"text {i}", "label": y, "prediction": p, "probabilities": []}
            for i, y, p in zip(idx, labels, predictions)]


def exact_mcnemar(b: int, c: int) -> float:
    """Two-sided exact McNemar written out: twice the smaller binomial tail of the discordant pairs."""
    n = b + c
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def test_counts_accuracy_and_mcnemar_match_an_independent_formulation():
    # 20 examples: 10 both right, 1 only A right, 6 only B right, 3 both wrong
    gold = ["x"] * 20
    a = ["x"] * 10 + ["x"] + ["y"] * 6 + ["y", "z", "y"]
    b = ["x"] * 10 + ["y"] + ["x"] * 6 + ["z", "z", "y"]
    out = paired_comparison(rows(gold, a), rows(gold, b), seed=3, resamples=500)
    assert (out.both_right, out.only_a_right, out.only_b_right, out.both_wrong) == (10, 1, 6, 3)
    assert out.n == 20 and out.accuracy_a == pytest.approx(11 / 20) and out.accuracy_b == pytest.approx(16 / 20)
    assert out.difference == pytest.approx(5 / 20)
    assert out.mcnemar_p == pytest.approx(exact_mcnemar(1, 6))   # 16/128 = 0.125
    assert out.ci_low <= out.difference <= out.ci_high
    # disagreements are where the predictions differ (both wrong but different counts too)
    assert [d["idx"] for d in out.disagreements] == [10, 11, 12, 13, 14, 15, 16, 17]
    assert out.disagreements[-1] == {"idx": 17, "text": "text 17", "label": "x", "a_prediction": "y",
                                     "b_prediction": "z"}
    again = paired_comparison(rows(gold, a), rows(gold, b), seed=3, resamples=500)
    assert (again.ci_low, again.ci_high) == (out.ci_low, out.ci_high)   # seeded


@pytest.mark.parametrize("b,c", [(0, 5), (3, 9), (7, 7), (12, 2)])
def test_mcnemar_p_over_several_tables(b, c):
    gold = ["x"] * (b + c)
    out = paired_comparison(rows(gold, ["x"] * b + ["y"] * c), rows(gold, ["y"] * b + ["x"] * c), resamples=0)
    assert out.mcnemar_p == pytest.approx(exact_mcnemar(b, c))
    assert out.ci_low is None and out.ci_high is None


def test_identical_predictions_differ_by_nothing():
    gold = ["a", "b", "c", "a", "b"]
    preds = ["a", "c", "c", "b", "b"]
    out = paired_comparison(rows(gold, preds), rows(gold, preds))
    assert out.difference == 0 and out.mcnemar_p == 1.0 and out.disagreements == []
    assert (out.ci_low, out.ci_high) == (0.0, 0.0)


def test_rows_are_aligned_by_idx_not_order():
    gold, a, b = ["a", "b", "c"], ["a", "b", "a"], ["a", "a", "c"]
    shuffled = list(reversed(rows(gold, b)))
    out = paired_comparison(rows(gold, a), shuffled, resamples=0)
    assert (out.only_a_right, out.only_b_right) == (1, 1)


@pytest.mark.parametrize("a,b,reason", [
    (rows(["a", "b"], ["a", "b"]), rows(["a", "b"], ["a", "b"], idx=[0, 2]), "different examples"),
    (rows(["a", "b"], ["a", "b"]), rows(["a", "a"], ["a", "b"]), "gold label 'b' in A but 'a' in B"),
    (rows(["a", "b"], ["a", "b"], idx=[0, 0]), rows(["a", "b"], ["a", "b"]), "twice"),
    (rows([None, "b"], ["a", "b"]), rows([None, "b"], ["a", "b"]), "no gold label"),
    ([], [], "no predictions"),
])
def test_misaligned_inputs_raise(a, b, reason):
    with pytest.raises(PairingError, match=reason):
        paired_comparison(a, b)


def test_agrees_with_statsmodels_when_installed():
    table = pytest.importorskip("statsmodels.stats.contingency_tables")
    gold = ["x"] * 14
    out = paired_comparison(rows(gold, ["x"] * 2 + ["x"] * 3 + ["y"] * 9),
                            rows(gold, ["x"] * 2 + ["y"] * 3 + ["x"] * 9), resamples=0)
    expected = table.mcnemar([[2, 3], [9, 0]], exact=True).pvalue
    assert out.mcnemar_p == pytest.approx(expected)


# -- the command ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compared(tmp_path_factory, tiny_model_dir, tiny_csv):
    """A variant trained (and scored on test) through the CLI, a torch bf16 engine, and a run on it."""
    root = tmp_path_factory.mktemp("compare")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_config(tiny_model_dir, tiny_csv, eval={"suite": "default", "bootstrap": 20})))
    home = root / "home"
    trained = evalhub("--json", "train", str(config), home=home)
    assert trained.returncode == 0, trained.stderr
    variant = json.loads(trained.stdout.strip().splitlines()[-1])["variant"]
    built = evalhub("--json", "build-engine", variant, "--backend", "torch", "--precision", "bf16", home=home)
    assert built.returncode == 0, built.stderr
    engine = json.loads(built.stdout.strip().splitlines()[-1])["engine"]
    scored = evalhub("--json", "eval", variant, "--engine", "torch", "--bootstrap", "20", home=home)
    assert scored.returncode == 0, scored.stderr
    return {"home": home, "root": root, "variant": variant, "engine": engine,
            "engine_run": json.loads(scored.stdout)["run"]}


def test_compare_json_pairs_the_torch_model_with_its_engine(compared):
    home, variant, engine = compared["home"], compared["variant"], compared["engine"]
    before = snapshot(home)
    result = evalhub("--json", "compare", variant, f"{variant}@{engine}", home=home)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    p = out["paired"]
    n_test = out["a"]["n_examples"]
    assert p["n"] == n_test == out["b"]["n_examples"]
    assert p["both_right"] + p["only_a_right"] + p["only_b_right"] + p["both_wrong"] == n_test
    assert out["a"]["engine"] == "torch-fp32" and out["b"]["engine"] == engine
    assert out["b"]["run"] == compared["engine_run"]    # the latest run of that row with predictions
    assert 0 <= p["mcnemar_p"] <= 1 and p["ci_low"] <= p["difference"] <= p["ci_high"]
    accuracy = next(m for m in out["scorecard"] if m["metric"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"]) and accuracy["higher_is_better"]
    assert accuracy["b"] == pytest.approx(p["accuracy_b"])
    # rows as the leaderboard shows them, and --format json, give the same comparison
    board = json.loads(evalhub("leaderboard", "--format", "json", home=home).stdout)
    a_row, b_row = (f"{r['variant']}@{r['engine']}" for r in sorted(board, key=lambda r: r["engine"] != "torch-fp32"))
    pasted = json.loads(evalhub("compare", a_row, b_row, "--format", "json", home=home).stdout)
    assert pasted["paired"] == p
    assert snapshot(home) == before     # read-only


def test_compare_table(compared):
    home, variant = compared["home"], compared["variant"]
    result = evalhub("compare", variant, f"{variant}@torch", home=home)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "accuracy" in text and "McNemar       exact p = " in text and "paired bootstrap" in text
    assert "both right" in text
    same = evalhub("compare", variant, variant, home=home).stdout
    assert "predict the same label on every example" in same and "exact p = 1 " in same


def test_compare_bad_rows_exit_2(compared):
    home, variant = compared["home"], compared["variant"]
    before = snapshot(home)
    assert_user_error(evalhub("compare", "no-such-variant", variant, home=home), r"no variant 'no-such-variant'")
    assert_user_error(evalhub("compare", variant, f"{variant}@warp", home=home), r"no engine 'warp' for ")
    assert_user_error(evalhub("compare", variant, f"{variant}@", home=home), r"is not VARIANT or VARIANT@ENGINE")
    assert_user_error(evalhub("compare", variant, f"{variant}@torch", "--split", "validation", home=home),
                      rf"has no run of its torch model on split 'validation' .*`evalhub eval {variant} --split validation`")
    assert_user_error(evalhub("compare", variant, "--format", "xml", f"{variant}@torch", home=home),
                      r"invalid choice: 'xml'")
    assert snapshot(home) == before


def edited_copy(compared, tmp_path, sql: str) -> Path:
    """A copy of the compared store with one SQL statement (on the engine's run) applied."""
    home = tmp_path / "home"
    shutil.copytree(compared["home"], home)
    conn = sqlite3.connect(home / "results.db")
    with conn:
        conn.execute(sql, (compared["engine_run"],))
    conn.close()
    return home


def test_compare_refuses_rows_scored_on_different_data(compared, tmp_path):
    home = edited_copy(compared, tmp_path, "UPDATE runs SET data_hash = 'edited' WHERE id = ?")
    variant = compared["variant"]
    assert_user_error(evalhub("compare", variant, f"{variant}@{compared['engine']}", home=home),
                      r"were scored on different data for split 'test' .*cannot be paired")


def test_compare_refuses_runs_whose_examples_differ(compared, tmp_path):
    home = edited_copy(compared, tmp_path, "DELETE FROM predictions WHERE run_id = ? AND idx = 0")
    variant = compared["variant"]
    assert_user_error(evalhub("compare", variant, f"{variant}@torch", home=home),
                      r"cannot be paired: the runs scored different examples \(1 only in A, 0 only in B\)")


def test_the_core_does_not_import_evaluators():
    source = (Path(__file__).parents[1] / "hub" / "compare_rows.py").read_text()
    assert "evaluators" not in "".join(line for line in source.splitlines()
                                       if line.startswith(("import", "from")))


def test_the_table_shows_ten_disagreements_cut_to_80_characters():
    from hub.compare_rows import format_comparison

    gold = ["x"] * 30
    a_rows, b_rows = rows(gold, ["x"] * 30), rows(gold, ["x"] * 5 + ["y"] * 25)
    for row in a_rows + b_rows:
        row["text"] = f"example {row['idx']} " + "word " * 40
    paired = paired_comparison(a_rows, b_rows, resamples=100).to_dict()
    side = {"variant": "v1", "engine": "torch-fp32", "run": "run-1", "data_hash": "abc"}
    text = format_comparison({"split": "test", "a": side, "b": {**side, "engine": "torch-bf16-1", "run": "run-2"},
                              "scorecard": [{"metric": "ece", "a": 0.1, "b": 0.10001, "delta": 0.00001,
                                             "higher_is_better": False, "b_vs_a": "worse"}], "paired": paired})
    assert "ece     0.1000  0.1000  +1.0e-05  worse" in text
    assert "25 examples where A and B predict differently (first 10; --format json gives all)" in text
    shown = [line for line in text.splitlines() if "example " in line and "word" in line]
    assert len(shown) == 10 and shown[0].split()[:4] == ["5", "x", "x", "y"]
    assert all(line.endswith("…") and len(line.split("  ")[-1]) <= 80 for line in shown)
    assert "only A right 25" in text and "both wrong 0" in text
