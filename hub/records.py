"""The records the store keeps: a variant with its lineage, an evaluation run, and small helpers
to read them (a run's suite steps, a variant named by id, name or id prefix).

They are plain dataclasses, stored as rows of the results database (``hub.db.schema``);
:func:`leaderboard_rows` folds metric rows into the leaderboard (pure: the store queries).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping


@dataclass
class VariantRecord:
    """A trained model with its lineage; a row of the DB (``variant.json`` is a copy never read back)."""

    id: str
    name: str
    task: str
    base_model: str
    peft_method: str
    labels: list[str]
    dataset: dict[str, Any]          # source, columns, split hashes and sizes, report
    peft_config: dict[str, Any]
    hyperparameters: dict[str, Any]
    run_config: dict[str, Any]
    config_hash: str
    seed: int
    versions: dict[str, str]
    parent_id: str | None = None
    kind: str = "model"
    has_merged: bool = True         # model/ holds full weights; else base + adapter/
    has_adapter: bool = False
    train_summary: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)


@dataclass
class RunRecord:
    variant_id: str
    engine: str
    suite: str
    dataset: str
    split: str
    data_hash: str
    config_hash: str
    seed: int
    versions: dict[str, str]
    n_examples: int
    duration_s: float
    # one {"evaluator", "options" (as the suite set them), "metrics" (the names it wrote)} per step
    suite_steps: list = field(default_factory=list)
    id: str = field(default_factory=lambda: "run-" + uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)


def describe_steps(steps: list[dict]) -> list[str]:
    """``evaluator k=v, k=v`` for each suite step that set options (what a run changed from defaults)."""
    return [f"{step['evaluator']} " + ", ".join(f"{k}={v}" for k, v in step["options"].items())
            for step in steps if isinstance(step.get("options"), dict) and step["options"]]


def load_steps(text: str) -> list[dict]:
    """A run's ``suite_steps`` column; entries of another shape (not written by this evalhub) are skipped."""
    try:
        steps = json.loads(text)
    except ValueError:
        return []
    return [step for step in steps if isinstance(step, dict) and "evaluator" in step] if isinstance(steps, list) else []


def match_variants(variants: list[VariantRecord], ref: str) -> list[VariantRecord]:
    """The variants ``ref`` names: by id or name exactly, else by id prefix (several: ambiguous)."""
    exact = [v for v in variants if ref in (v.id, v.name)]
    return exact or [v for v in variants if v.id.startswith(ref)]


def leaderboard_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The leaderboard from metric rows oldest first (each with its run's and variant's columns): one row
    per (variant, engine, split) with the latest value of every metric."""
    board: dict[tuple, dict] = {}
    source: dict[tuple, dict[str, str]] = {}     # row -> metric -> the run its value comes from
    settings_of: dict[str, dict[str, str]] = {}  # run -> metric -> its step's non-default options
    for r in rows:  # later runs overwrite earlier values of the same metric
        key = (r["variant"], r["engine"], r["split"])
        row = board.setdefault(key, {"variant": r["variant"], "name": r["name"], "task": r["task"],
                                     "method": r["method"],
                                     "engine": r["engine"], "dataset": r["dataset"], "split": r["split"]})
        row[r["metric"]] = r["value"]
        row.pop(f"{r['metric']}_ci", None)
        if r["ci_low"] is not None:
            row[f"{r['metric']}_ci"] = [r["ci_low"], r["ci_high"]]
        source.setdefault(key, {})[r["metric"]] = r["run_id"]
        if r["run_id"] not in settings_of:     # each run's steps are read once, not once per metric
            settings_of[r["run_id"]] = {metric: text for step in load_steps(r["suite_steps"])
                                        for text in describe_steps([step]) for metric in step.get("metrics", [])}
    for key, row in board.items():   # options that differ from the defaults, behind the values shown
        settings = sorted({settings_of[run][metric] for metric, run in source[key].items()
                           if metric in settings_of[run]})
        if settings:
            row["settings"] = "; ".join(settings)
    return sorted(board.values(), key=_board_order)


def _board_order(row: dict) -> tuple:
    """Rows of one task together, each task's best first by its headline metric (``Task.headline_metric``)."""
    from hub.registries import TASKS

    headline = TASKS.get(row["task"]).headline_metric if row.get("task") in TASKS else "accuracy"
    return row.get("task") or "", -float(row.get(headline, float("-inf")))
