"""Leaderboard and variant reports as table, CSV, JSON or Markdown."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Sequence

from hub.registries import TASKS
from hub.store import describe_steps

HEADLINE = ["accuracy", "f1_macro", "f1_micro", "mcc", "ece", "brier",       # text-classification
            "rougeL", "chrf", "rouge1", "rouge2", "bleu", "exact_match", "perplexity"]   # text-generation
ID_COLUMNS = ["variant", "method", "engine", "split"]
# One headline number per scorecard for the terminal table; csv adds every other top-level metric,
# json carries whole rows (names, datasets, confidence intervals, per-class and per-group metrics).
TABLE_EXTRA = ["agreement", "p50_ms_b1_s128", "p50_ms_b32_s128", "flip_rate", "attack_success_rate",
               "fairness_flip_rate", "toxicity_max", "pii_rate", "comprehensiveness/occlusion",
               "token_agreement", "tokens_per_s_b1", "ttft_ms_b1"]     # text-generation engines


def table_columns(rows: list[dict]) -> list[str]:
    present = {k for r in rows for k in r}
    return ID_COLUMNS + [m for m in HEADLINE[:5] + HEADLINE[6:9] + TABLE_EXTRA if m in present] + _settings(rows)


def leaderboard_columns(rows: list[dict]) -> list[str]:
    metrics = [m for m in HEADLINE if any(m in r for r in rows)]
    extra = sorted({k for r in rows for k in r if k not in metrics and k not in ID_COLUMNS
                    and k not in ("name", "task", "dataset", "settings") and not k.endswith("_ci") and "/" not in k})
    return ID_COLUMNS + metrics + extra + _settings(rows)


def _settings(rows: list[dict]) -> list[str]:
    """The ``settings`` column (suite options that differ from the defaults), last, when any row has one."""
    return ["settings"] if any("settings" in r for r in rows) else []


def _cell(row: dict, column: str, *, ci: bool = True) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.4f}"
        interval = row.get(f"{column}_ci")
        if ci and interval:
            text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
        return text
    return str(value)


def format_rows(rows: list[dict], fmt: str) -> str:
    columns = leaderboard_columns(rows) if fmt in ("csv", "json") else table_columns(rows)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    cells = [[_cell(r, c) for c in columns] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells])
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(c) for c in cells])


# timing figures of an auto trial (the task's ``auto_timing`` keys) -> how a value is shown
TRIAL_TIMINGS = {"p50_ms_b": "ms", "ms_per_token_b": "ms/token"}


def trial_line(trial: dict, parity_keys: Sequence[str] = ("agreement",)) -> str:
    """One candidate of an auto build: its speed and parity (the task's ``auto_parity_keys``), or
    why it was left out."""
    name = f"{trial.get('backend')}-{trial.get('precision')}"
    if trial.get("error"):
        return f"{name:<20} left out: {trial['error'].splitlines()[0][:120]}"
    shown = [f"{key} {trial[key]:.4f}" for key in parity_keys
             if isinstance(trial.get(key), (int, float)) and not isinstance(trial.get(key), bool)]
    parity = ", ".join(shown + [f"parity {'passed' if trial.get('passed') else 'failed'}"])
    timings = [f"b{key[len(prefix):]} {value:.1f} {unit}" for key, value in trial.items()
               for prefix, unit in TRIAL_TIMINGS.items() if key.startswith(prefix) and key[len(prefix):].isdigit()]
    return f"{name:<20} " + ", ".join(timings + [parity])


def _parity_line(task: Any, parity: dict) -> str:
    """The task's own line for an engine's parity report; a report it cannot read (written by an
    older evalhub) says only whether it passed."""
    try:
        return task.parity_line(parity)
    except (KeyError, TypeError, ValueError):
        return f"parity {'passed' if parity.get('passed') else 'FAILED'}"


def _training_line(record: Any, summary: dict) -> str:
    """Steps, the best validation score and its step, and which step's weights were stored."""
    steps, best, at = summary.get("steps"), summary.get("best_validation"), summary.get("best_step")
    external = summary.get("external")
    if isinstance(external, dict):   # a pulled variant (hub/pull.py): where it came from, not a training run
        commit = f"@{str(external['commit'])[:10]}" if external.get("commit") else ""
        return f"not here: pulled from {external.get('repo_id') or external.get('source')}{commit}"
    if best is None:
        return f"{steps} steps"
    metric = (record.hyperparameters or {}).get("metric_for_best", "accuracy")
    restored = bool((record.hyperparameters or {}).get("early_stopping_patience"))   # the loop keeps the best
    stored = at if restored else steps
    return f"{steps} steps, best validation {metric} {best:.4f} at step {at}; weights stored from step {stored}"


def push_line(push: dict) -> str:
    """One push of a variant: repo, branch, commit (or the PR it opened) and how many files."""
    commit = f"commit {push['commit_oid'][:10]}" if push.get("commit_oid") else "no commit"
    where = f"PR {push['pr_url']}" if push.get("pr_url") else push["url"]
    return (f"pushed to {push['repo_id']}@{push['revision']}  {commit}, {len(push['files'])} files  {where}")


def pruning_line(pruning: dict) -> str:
    """How a pruned variant was made: shares removed, importance, heads and FFN widths left, parameters kept."""
    settings, params = pruning.get("settings", {}), pruning.get("parameters", {})
    recovery = pruning.get("recovery", {})
    return (f"heads {settings.get('heads')}, ffn {settings.get('ffn')} by {settings.get('method')}; heads per layer "
            f"{pruning.get('heads_per_layer')}, ffn {pruning.get('intermediate_sizes')}; parameters "
            f"{params.get('after')} of {params.get('before')} ({params.get('kept', 0):.1%} kept); recovered "
            f"{recovery.get('steps')} steps (T {recovery.get('temperature')}, alpha {recovery.get('alpha')})")


def describe_variant(record: Any, runs: list[dict], metrics_by_run: dict[str, list[dict]],
                     engines: list[Any] = (), pushes: list[dict] = ()) -> str:
    """What ``evalhub show`` prints: lineage, engines, where it was published (``Store.pushes``), runs."""
    summary = record.train_summary or {}
    trainable = summary.get("trainable_parameters", {})
    lines = [
        f"variant     {record.id}  ({record.name})",
        f"task        {record.task}",
        f"base model  {record.base_model}",
        f"method      {record.peft_method}" + (f"  (trainable {trainable.get('fraction', 0):.2%})" if trainable else ""),
        f"dataset     {record.dataset.get('source')}  sizes {record.dataset.get('sizes')}",
        *([f"labels      {', '.join(record.labels)}"] if record.labels else []),
        f"seed        {record.seed}   config {record.config_hash}",
        f"trained     {_training_line(record, summary)}",
        "versions    " + ", ".join(f"{k} {v}" for k, v in sorted(record.versions.items())),
    ]
    if record.parent_id:
        lines.insert(3, f"parent      {record.parent_id}")
    if summary.get("pruning"):
        lines.insert(4, f"pruned      {pruning_line(summary['pruning'])}")
    task = TASKS.get(record.task)
    for engine in engines:
        lines.append(f"engine {engine.id}  {engine.backend} {engine.precision}  {_parity_line(task, engine.parity)}")
        if engine.auto:
            lines.append(f"    auto: {engine.auto.get('why')}")
            lines += [f"      {trial_line(t, task.auto_parity_keys)}" for t in engine.auto.get("trials", [])]
    lines += [push_line(push) for push in pushes]
    for run in runs:
        lines.append(f"run {run['id']}  {run['suite']} on {run['split']} ({run['n_examples']} examples, engine {run['engine']})")
        set_options = describe_steps(run.get("suite_steps", []))
        if set_options:
            lines.append(f"    options: {'; '.join(set_options)}")
        for m in metrics_by_run.get(run["id"], []):
            ci = f"  [{m['ci_low']:.4f}, {m['ci_high']:.4f}]" if m["ci_low"] is not None else ""
            lines.append(f"    {m['metric']:<28} {m['value']:.4f}{ci}")
    return "\n".join(lines)
