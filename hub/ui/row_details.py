"""The details of one leaderboard row: what made it, how its engine measured, and where it fails.

Read-only over the store (or the app's store view); no gradio, so tests call it on a store
written directly. A row is (variant, engine, split) as ``Store.leaderboard()`` keys it;
``find_row`` resolves a clicked table row from its cells, because the table is sorted and
filtered in the browser and a position alone names no row.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from hub.errors import UserError, quote

TORCH_MODEL = "torch-fp32"   # the engine column of runs on a variant's own torch model
WORST = 10                   # worst-scored examples shown
TEXT_CHARS = 300             # each example's text is cut to this


def _same(cell: Any, value: Any) -> bool:
    """Whether a shown cell equals a row's value as the table showed it (floats at 4 places)."""
    if isinstance(value, float) and isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return abs(round(value, 4) - float(cell)) < 1e-9
    if value is None or value == "":
        return cell is None or cell == "" or (isinstance(cell, float) and cell != cell)
    return str(cell) == str(value)


def find_row(rows: list[dict], headers: list[str], values: list[Any]) -> dict | None:
    """The row whose shown cells are ``values`` under ``headers``: variant, engine and split
    (where shown) must match exactly; among several, the one matching most other cells."""
    shown = dict(zip(headers, values))
    keys = [k for k in ("variant", "engine", "split") if k in shown]
    if "variant" not in keys:
        return None
    matches = [r for r in rows if all(str(r.get(k)) == str(shown[k]) for k in keys)]
    if not matches:
        return None
    others = [h for h in shown if h not in keys and not h.endswith("_ci")]
    return max(matches, key=lambda r: sum(_same(shown[h], r.get(h)) for h in others))


def _when(ts: Any) -> str | None:
    if not isinstance(ts, (int, float)):
        return None
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds")


def _versions(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def worst_examples(predictions: list[dict], labels: list[str], n: int = WORST) -> list[dict]:
    """The ``n`` examples with the lowest probability of their gold label (the largest loss)."""
    out = []
    for p in predictions:
        gold, probs = p.get("label"), p.get("probabilities") or []
        if gold not in labels or labels.index(gold) >= len(probs):
            continue   # no gold label stored (or one the variant does not know): no loss to rank by
        text = str(p.get("text", ""))
        out.append({"text": text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…", "gold": gold,
                    "predicted": p.get("prediction"), "p_gold": round(float(probs[labels.index(gold)]), 6)})
    return sorted(out, key=lambda e: e["p_gold"])[:n]


def _engine(store: Any, variant_id: str, engine: str) -> dict:
    if engine == TORCH_MODEL:
        return {"engine": engine, "note": "the variant's own torch model (eager fp32): not a built engine, so it "
                                          "has no parity or latency report"}
    record = next((e for e in store.list_engines(variant_id) if e.id == engine), None)
    if record is None:
        return {"engine": engine, "note": "this engine's record is not in the store (removed?)"}
    return {"engine": record.id, "backend": record.backend, "precision": record.precision,
            "options": record.options, "max_length": record.max_length, "created": _when(record.created_at),
            "parity": record.parity, "latency": record.latency, "auto": record.auto}


def _lineage(variant: Any, runs: list[dict]) -> dict:
    last = runs[-1]
    return {"dataset": last["dataset"], "split": last["split"], "data_hash": last["data_hash"],
            "config_hash": last["config_hash"], "seed": last["seed"], "versions": _versions(last["versions"]),
            "created": _when(last["created_at"]), "base_model": variant.base_model, "peft_method": variant.peft_method,
            "variant_created": _when(variant.created_at), "variant_config_hash": variant.config_hash,
            "runs": [{"run": r["id"], "suite": r["suite"], "n_examples": r["n_examples"], "created": _when(r["created_at"])}
                     for r in runs]}


def row_details(store: Any, variant_id: str, engine: str, split: str, *, worst: int = WORST) -> dict:
    """Run config, lineage, engine reports, suite settings and worst examples of one row.
    UserError (naming only the row asked for) when the store holds no such row."""
    asked = f"{quote(variant_id)} @ {quote(engine)} on split {quote(split)}"
    variant = next((v for v in store.list_variants() if v.id == variant_id), None)
    runs = [r for r in store.runs(variant_id) if r["engine"] == engine and r["split"] == split] if variant else []
    if not runs:
        raise UserError(f"no leaderboard row {asked}; press Refresh and pick a row of the table")
    predictions: list[dict] = []
    for run in reversed(runs):    # the latest run that stored per-example predictions
        predictions = store.predictions(run["id"])
        if predictions:
            break
    return {"row": {"variant": variant.id, "name": variant.name, "engine": engine, "split": split,
                    "task": variant.task},
            "run_config": variant.run_config,
            "lineage": _lineage(variant, runs),
            "engine": _engine(store, variant.id, engine),
            "suite": [{"run": r["id"], "suite": r["suite"], "steps": r["suite_steps"]} for r in runs],
            "worst_examples": worst_examples(predictions, list(variant.labels), worst)}
