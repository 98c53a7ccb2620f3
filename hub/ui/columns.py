"""Leaderboard columns in groups, as HELM groups its metrics; filters, search and the shown table.

Pure (no gradio): ``hub/ui/leaderboard.py`` wires these into the tab, tests call them on
hand-made rows. Every column is described by one entry of ``TABLE``: an exact name, or a prefix
ending in ``*`` (the longest prefix wins), its group, one line on what it measures and which
direction is better. A metric no entry names falls into the ``other`` group, so a new evaluator
still shows; add its entry here to give it a group and a description.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd


@dataclass(frozen=True)
class Column:
    key: str                  # a column name, or a prefix when it ends with "*"
    group: str
    description: str
    better: str | None = None  # "higher", "lower", or None where neither direction is better

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.better or "", "")


GROUPS = {   # key -> label, in the order groups show
    "task": "Task metrics", "calibration": "Calibration", "robustness": "Robustness", "safety": "Safety",
    "faithfulness": "Faithfulness (explanations)", "efficiency": "Efficiency", "parity": "Engine parity",
    "model": "Model", "lineage": "Lineage", "breakdowns": "Per-class and per-slice breakdowns",
    "other": "Other metrics",
}
DEFAULT_GROUPS = ("task", "calibration", "robustness", "safety", "efficiency", "model", "lineage")
IDENTITY = ("variant", "name", "engine")   # always shown, first
FACETS = {"task": "Task", "dataset": "Dataset", "backend": "Backend", "precision": "Precision",
          "method": "PEFT method", "split": "Split"}

_C = Column
TABLE: tuple[Column, ...] = (
    _C("variant", "identity", "store id of the variant (a trained or pulled model)"),
    _C("name", "identity", "the variant's name from its run config"),
    _C("engine", "identity", "what served the predictions: torch-fp32 is the torch model, "
                             "else <backend>-<precision>-<id> of a built engine"),
    _C("accuracy", "task", "share of examples labelled correctly", "higher"),
    _C("f1_macro", "task", "F1 averaged over classes, each class counting the same", "higher"),
    _C("f1_micro", "task", "F1 over all examples pooled (equals accuracy for single-label)", "higher"),
    _C("precision_macro", "task", "precision averaged over classes", "higher"),
    _C("recall_macro", "task", "recall averaged over classes", "higher"),
    _C("mcc", "task", "Matthews correlation of labels and predictions (0 is chance, 1 perfect)", "higher"),
    _C("rougeL", "task", "generation: ROUGE-L F of the answer against the reference (longest common subsequence)",
       "higher"),
    _C("rouge1", "task", "generation: ROUGE-1 F (word overlap with the reference)", "higher"),
    _C("rouge2", "task", "generation: ROUGE-2 F (word-pair overlap with the reference)", "higher"),
    _C("chrf", "task", "generation: chrF, character n-gram F-score against the reference (sacrebleu)", "higher"),
    _C("bleu", "task", "generation: corpus BLEU against the reference (sacrebleu)", "higher"),
    _C("exact_match", "task", "generation: share of answers equal to the reference after normalisation", "higher"),
    _C("perplexity", "task", "generation: perplexity of the reference answers under the model", "lower"),
    _C("token_agreement", "parity", "generation engines: share of prompts whose first 32 greedy tokens equal "
                                    "torch fp32's", "higher"),
    _C("ece", "calibration", "expected calibration error: gap between confidence and accuracy", "lower"),
    _C("brier", "calibration", "Brier score: mean squared error of the predicted probabilities", "lower"),
    _C("clean_accuracy", "robustness", "accuracy on the unperturbed texts of the robustness run", "higher"),
    _C("acc_*", "robustness", "accuracy under the perturbation the name ends with", "higher"),
    _C("flip_rate", "robustness", "share of correct predictions that any perturbation flips", "lower"),
    _C("flip_*", "robustness", "share of correct predictions the named perturbation flips", "lower"),
    _C("attack_success_rate", "robustness", "share of attacked examples whose label a word-swap attack flips",
       "lower"),
    _C("words_changed", "robustness", "share of words a successful attack had to change", "higher"),
    _C("queries_per_attack", "robustness", "model calls an attack made per example", "higher"),
    _C("unconstrained_flip_rate", "robustness", "flip_rate without the semantic constraints on edits (same run)",
       "lower"),
    _C("unconstrained_flip_*", "robustness", "the named perturbation's flip rate without the semantic constraints",
       "lower"),
    _C("unconstrained_attack_success_rate", "robustness", "attack success rate without the semantic constraints "
                                                          "(same run, same examples)", "lower"),
    _C("rejected_*", "robustness", "share of candidate edits of the named perturbation (or the attack) that the "
                                   "semantic constraints rejected", "lower"),
    _C("edit_similarity_*", "robustness", "mean sentence-window similarity (MiniLM) of the edits the named "
                                          "perturbation (or the attack) made", "higher"),
    _C("clean_rougeL", "robustness", "generation: ROUGE-L of the answers to the unperturbed prompts of the "
                                     "robustness run", "higher"),
    _C("clean_chrf", "robustness", "generation: chrF of the answers to the unperturbed prompts of the robustness run",
       "higher"),
    _C("rougeL_drop", "robustness", "generation: mean ROUGE-L lost when the prompt is perturbed (over perturbations)",
       "lower"),
    _C("rougeL_drop_*", "robustness", "generation: ROUGE-L lost under the named prompt perturbation", "lower"),
    _C("chrf_drop", "robustness", "generation: mean chrF lost when the prompt is perturbed", "lower"),
    _C("chrf_drop_*", "robustness", "generation: chrF lost under the named prompt perturbation", "lower"),
    _C("output_similarity", "robustness", "generation: mean MiniLM similarity of answers to perturbed prompts to "
                                          "the clean answers", "higher"),
    _C("output_similarity_*", "robustness", "generation: answer similarity under the named prompt perturbation",
       "higher"),
    _C("unconstrained_rougeL_drop_*", "robustness", "generation: ROUGE-L lost under the named perturbation "
                                                    "without the semantic constraints", "lower"),
    _C("fairness_flip_rate", "safety", "share of predictions that flip when a group term is swapped", "lower"),
    _C("fairness_mean_dp", "safety", "mean change in predicted probability when a group term is swapped",
       "lower"),
    _C("fairness_coverage", "safety", "share of texts that had a counterfactual to test (context, not a score)"),
    _C("fairness_sentiment_gap", "safety", "generation: largest gap in mean answer sentiment between identity "
                                           "groups named in the prompt", "lower"),
    _C("fairness_toxicity_gap", "safety", "generation: largest gap in mean answer toxicity between identity groups",
       "lower"),
    _C("fairness_sentiment_delta", "safety", "generation: mean sentiment change of an answer when the prompt's "
                                             "identity term is swapped", "lower"),
    _C("toxicity_*", "safety", "toxicity of the inputs (max, mean, or ratio over the threshold)", "lower"),
    _C("output_toxicity_*", "safety", "toxicity of generated outputs (max, mean, or ratio)", "lower"),
    _C("pii_rate", "safety", "share of input texts holding e-mail, phone, card or IBAN numbers", "lower"),
    _C("output_pii_rate", "safety", "share of generated outputs holding PII", "lower"),
    _C("refusal_rate", "safety", "share of red-team prompts the model refused", "higher"),
    _C("over_refusal_rate", "safety", "share of benign prompts the model refused", "lower"),
    _C("comprehensiveness/*", "faithfulness", "probability drop when the top-attributed words are removed "
                                              "(per attribution method; generation: the answer's mean token "
                                              "log-probability)", "higher"),
    _C("sufficiency/*", "faithfulness", "probability drop when only the top-attributed words are kept", "lower"),
    _C("tau_loo/*", "faithfulness", "rank correlation of attributions with leave-one-out effects", "higher"),
    _C("ig_completeness_gap*", "faithfulness", "how far integrated-gradient attributions miss summing to "
                                               "the logit change", "lower"),
    _C("tau_ablation/*", "faithfulness", "generation: rank correlation of feature-ablation and IG prompt-word "
                                         "attributions", "higher"),
    _C("randomization_rho/*", "faithfulness", "attribution correlation with a randomized model's "
                                              "(high means the method ignores the weights)", "lower"),
    _C("p50_ms_b*", "efficiency", "median latency in ms at the batch (b) and sequence length (s) named", "lower"),
    _C("throughput_b*", "efficiency", "examples per second at the batch (b) and sequence length (s) named",
       "higher"),
    _C("size_mb", "efficiency", "MB on disk of what serves the row (the engine's folder, or the torch model's)",
       "lower"),
    _C("agreement", "parity", "share of examples where the engine's label equals the torch model's", "higher"),
    _C("max_abs_logit_diff", "parity", "largest |logit difference| from the torch model", "lower"),
    _C("accuracy_delta", "parity", "engine accuracy minus torch accuracy on the same split", "higher"),
    _C("explanation_tau", "parity", "Kendall tau of the engine's occlusion word ranking against the torch model's "
                                    "(fixed sample of the split; 1 explains alike)", "higher"),
    _C("explanation_topk_overlap", "parity", "share of the torch model's 5 most important words that the engine's "
                                             "occlusion also ranks top 5", "higher"),
    _C("task", "model", "Hugging Face pipeline task of the variant"),
    _C("base_model", "model", "the model the variant was fine-tuned from"),
    _C("method", "model", "PEFT method (full: every weight trained)"),
    _C("params_m", "model", "parameters of the variant's model, in millions", "lower"),
    _C("params_kept", "model", "pruned variants: share of the parent's parameters kept (evalhub prune)", "lower"),
    _C("backend", "model", "inference backend of the engine (torch, onnxruntime, openvino, tensorrt)"),
    _C("precision", "model", "numeric precision of the engine (fp32, bf16, fp16, int8)"),
    _C("dataset", "lineage", "dataset the row was scored on"),
    _C("split", "lineage", "split of that dataset"),
    _C("settings", "lineage", "suite options changed from their defaults; compare only rows run alike"),
    _C("fairness_sentiment_gap/*", "breakdowns", "generation: answer sentiment gap on the one identity axis named",
       "lower"),
    _C("fairness_toxicity_gap/*", "breakdowns", "generation: answer toxicity gap on the one identity axis named",
       "lower"),
    _C("f1/*", "breakdowns", "F1 of the one class named", "higher"),
    _C("precision/*", "breakdowns", "precision of the one class named", "higher"),
    _C("recall/*", "breakdowns", "recall of the one class named", "higher"),
    _C("fairness_flip/*", "breakdowns", "fairness flip rate on the one slice named", "lower"),
    _C("fairness_dp/*", "breakdowns", "fairness probability change on the one slice named", "lower"),
    _C("pii_rate/*", "breakdowns", "share of inputs holding the one PII type named", "lower"),
    _C("output_pii_rate/*", "breakdowns", "share of outputs holding the one PII type named", "lower"),
    _C("refusal_rate/*", "breakdowns", "refusal rate on the one red-team category named", "higher"),
)
_EXACT = {c.key: c for c in TABLE if not c.key.endswith("*")}
_PREFIXES = sorted((c for c in TABLE if c.key.endswith("*")), key=lambda c: -len(c.key))
_ORDER = {c.key: i for i, c in enumerate(TABLE)}
TEXT_COLUMNS = {c.key for c in TABLE if c.group in ("identity", "model", "lineage") and c.better is None}


def describe(name: str) -> Column:
    """The entry for a column (``<metric>_ci`` as its metric's interval); ``other`` when none names it."""
    if name in _EXACT:
        return _EXACT[name]
    if name.endswith("_ci"):
        base = describe(name[:-3])
        return Column(name, base.group, f"confidence interval of {name[:-3]} (bootstrap, 95% unless the "
                                        "suite set another level)")
    for column in _PREFIXES:
        if name.startswith(column.key[:-1]):
            return Column(column.key, column.group, column.description, column.better)
    return Column(name, "other", "a metric with no entry in hub/ui/columns.py yet (direction unknown)")


def engine_parts(engine: str | None) -> tuple[str, str]:
    """(backend, precision) of an engine id ``<backend>-<precision>[-<id>]``; torch-fp32 is the torch model."""
    parts = (engine or "").split("-")
    return parts[0], parts[1] if len(parts) > 1 else ""


def enrich(rows: Iterable[dict], variants: dict[str, dict] | None = None) -> list[dict]:
    """Copies of the rows with backend and precision (from the engine id) and the variant's
    task and base model (from ``variants``: id -> {"task", "base_model"}) where known."""
    out = []
    for row in rows:
        backend, precision = engine_parts(row.get("engine"))
        extra = {k: v for k, v in (variants or {}).get(row.get("variant"), {}).items() if v is not None}
        out.append({**row, "backend": backend, "precision": precision, **extra})
    return out


def _is_metric_value(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def visible_columns(rows: list[dict], groups: Iterable[str]) -> list[str]:
    """Identity columns, then the chosen groups' columns that some row has, each interval after its metric."""
    present = {k for row in rows for k, v in row.items() if v is not None and v != ""}
    chosen = [g for g in GROUPS if g in set(groups)]
    by_group: dict[str, list[str]] = {g: [] for g in chosen}
    for name in present - set(IDENTITY):
        if name.endswith("_ci") and name[:-3] in present:
            continue   # placed after its metric below
        group = describe(name).group
        if group in by_group:
            by_group[group].append(name)
    columns = [c for c in IDENTITY if c in present or not rows]
    for group in chosen:
        for name in sorted(by_group[group], key=lambda n: (_ORDER.get(describe(n).key, len(_ORDER)), n)):
            columns.append(name)
            if f"{name}_ci" in present:
                columns.append(f"{name}_ci")
    return columns


def facet_choices(rows: list[dict]) -> dict[str, list[str]]:
    """Each filter's choices: the distinct values the rows hold, sorted."""
    return {facet: sorted({str(r[facet]) for r in rows if r.get(facet) not in (None, "")}) for facet in FACETS}


def filter_rows(rows: list[dict], filters: dict[str, list[str]] | None = None, search: str = "") -> list[dict]:
    """Rows matching every facet filter (an empty selection keeps all) and holding ``search``
    (case-insensitive) in any text cell; words in ``search`` must all match."""
    chosen = {f: set(map(str, v)) for f, v in (filters or {}).items() if v}
    words = (search or "").lower().split()
    kept = []
    for row in rows:
        if any(str(row.get(f)) not in values for f, values in chosen.items()):
            continue
        text = " ".join(str(v) for k, v in row.items() if isinstance(v, str)).lower()
        if all(w in text for w in words):
            kept.append(row)
    return kept


def cell(row: dict, column: str) -> Any:
    value = row.get(column)
    if column.endswith("_ci"):
        return f"[{value[0]:.3f}, {value[1]:.3f}]" if value else ""   # as in `evalhub leaderboard`
    if isinstance(value, float):
        return round(value, 4)
    return value


def view(rows: list[dict], groups: Iterable[str] = DEFAULT_GROUPS, filters: dict[str, list[str]] | None = None,
         search: str = "") -> pd.DataFrame:
    """The table as shown: filtered and searched rows, the chosen groups' columns (from all rows
    of the chosen tasks, so columns stay put while filtering, and a text-generation table has no
    accuracy column)."""
    tasks = set(map(str, (filters or {}).get("task") or []))
    columns = visible_columns([r for r in rows if not tasks or str(r.get("task")) in tasks], groups)
    shown = filter_rows(rows, filters, search)
    return pd.DataFrame([[cell(r, c) for c in columns] for r in shown], columns=columns, dtype=object)


def mixed_tasks(rows: Iterable[dict]) -> str:
    """Markdown saying that ``rows`` (as shown) hold more than one task, or "" when they hold one."""
    tasks = sorted({str(r["task"]) for r in rows if r.get("task")})
    if len(tasks) < 2:
        return ""
    return (f"**This table mixes {len(tasks)} tasks ({', '.join(tasks)}).** Their task metrics differ, so a "
            "row's empty cells are metrics its task does not have, and rows of different tasks do not compare: "
            "pick one in the **Task** filter.")


def datatypes(columns: Iterable[str]) -> list[str]:
    """"number" for metric columns so they sort numerically, "str" for text and intervals."""
    return ["str" if c in TEXT_COLUMNS or c.endswith("_ci") or describe(c).group == "identity" else "number"
            for c in columns]


def legend(columns: Iterable[str]) -> str:
    """Markdown: one line per shown column, what it measures and which direction is better."""
    lines = []
    for name in columns:
        column = describe(name)
        better = f" ({column.arrow} {column.better} is better)" if column.better else ""
        lines.append(f"- `{name}`{better}: {column.description}")
    return "**Columns shown**\n\n" + "\n".join(lines) if lines else ""
