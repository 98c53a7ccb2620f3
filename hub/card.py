"""The model card of a variant, built from the store: what ``evalhub push`` writes as README.md.

:func:`build_card` reads the variant, its runs and their per-example records and returns a
:class:`Card`: the YAML front matter as ``huggingface_hub.ModelCardData`` (base model and its
relation, library, pipeline tag, license when known, tags, datasets by source name, and a
``model-index`` of ``huggingface_hub.EvalResult`` s: task metrics, calibration, robustness,
safety, faithfulness and latency, each with the engine, and for latency the hardware, in
``metric_config``) and the Markdown body (description, lineage, training setup, results per
leaderboard row, limitations drawn from the robustness and fairness records, how to use it).
``huggingface_hub.ModelCard`` renders the two into one text.

Pure: no network, no writes. A card is public, so it never names a local path: a local base
model or data file appears by its file name only, and string values that look like paths in
the stored configs are replaced by ``<local path>``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from hub.models import ALIASES

HUB_BASES = {"minilm": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0")}   # alias -> (Hub id, license)
EMBEDDED_LICENSES: dict[str, str] = {}        # embedded dataset -> model license it implies; none known
TORCH_MODEL = "torch-fp32"
DATA_SUFFIXES = {".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt", ".arrow", ".yaml", ".yml"}
LOCAL = "<local path>"
SHOWN_LIMITS = 3                              # perturbations / identity groups named under limitations
CATEGORIES = (                                # (category, metric-name prefixes), first match wins
    ("calibration", ("ece", "brier", "nll", "temperature")),
    ("robustness", ("clean_accuracy", "acc_", "flip_", "attack_success_rate", "words_changed",
                    "queries_per_attack")),
    ("safety", ("fairness_", "toxicity_", "output_toxicity_", "pii_rate", "refusal_rate", "over_refusal_rate")),
    ("faithfulness", ("comprehensiveness", "sufficiency", "tau_loo", "ig_completeness_gap", "randomization_rho")),
    ("latency", ("p50_ms_", "p95_ms_", "throughput_")),
)

AXES = ("task", *(name for name, _ in CATEGORIES))   # the order a results table groups its metrics in


@dataclass
class Card:
    """A rendered model card: ``text`` is README.md, ``data`` its front matter, ``card`` the ModelCard."""
    text: str
    data: ModelCardData
    card: ModelCard


def category(metric: str) -> str:
    """Which scorecard axis a metric name belongs to ("task" for the task metrics)."""
    for name, prefixes in CATEGORIES:
        if metric.startswith(prefixes):
            return name
    return "task"


def is_local(value: str) -> bool:
    """True for a string that names a file or folder on this machine rather than a Hub id or a name:
    absolute, home-relative or dotted paths, more than one '/', or a relative path to a data file."""
    text = str(value)
    if text.startswith(("/", "~", "./", "../", "\\")) or (len(text) > 2 and text[1:3] in (":\\", ":/")):
        return True
    return text.count("/") > 1 or ("/" in text and PurePath(text).suffix.lower() in DATA_SUFFIXES)


def scrub(value: Any) -> Any:
    """``value`` with every string that looks like a local path replaced by ``<local path>``."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return LOCAL if isinstance(value, str) and is_local(value) else value


def base_model(record: Any) -> tuple[str | None, str, str | None]:
    """(Hub id or None, the name shown, license or None) of the variant's base model."""
    name = record.base_model
    if name in HUB_BASES:
        hub_id, license_ = HUB_BASES[name]
        return hub_id, hub_id, license_
    if name in ALIASES or is_local(name):
        return None, f"a local model (`{PurePath(name).name}`)", None
    return name, name, None


def data_name(source: str) -> tuple[str | None, str]:
    """(source name for the ``datasets`` field or None when local, the name results are filed under):
    an embedded name or Hub id as it is, a local file or folder by its name alone."""
    source = str(source)
    if is_local(source):
        return None, PurePath(source).stem or "local-data"
    return source, source


def dataset_name(record: Any) -> tuple[str | None, str]:
    """:func:`data_name` of the data the variant was trained on."""
    return data_name(record.dataset.get("source", "unknown"))


def scorecards(store: Any, variant_id: str) -> dict[tuple[str, str], dict[str, dict]]:
    """(engine, split) -> metric -> its latest stored value (with CI and direction), as the leaderboard."""
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for run in store.runs(variant_id):   # oldest first: later runs overwrite
        rows.setdefault((run["engine"], run["split"]), {}).update(
            {m["metric"]: {**m, "run": run} for m in store.metrics(run["id"])})
    return rows


def _hardware(store: Any, engine: str) -> str:
    """The machine an engine's latency was measured on, in one short line."""
    if engine == TORCH_MODEL:
        return "not recorded"
    try:
        record = store.get_engine(engine)
    except Exception:   # an engine removed since its runs were stored
        return "unknown hardware"
    machine = {**(record.machine or {}), **(record.latency or {}).get("machine", {})}
    parts = [str(machine[k]) for k in ("gpu", "cpu") if machine.get(k)]
    if machine.get("cores"):
        parts.append(f"{machine['cores']} cores")
    return ", ".join(parts) or "unknown hardware"


def eval_results(store: Any, record: Any, cards: dict) -> list[EvalResult]:
    """One EvalResult per stored metric of every (engine, split) row, engine (and hardware) in metric_config."""
    task = record.task
    out = []
    for (engine, split), metrics in sorted(cards.items()):
        for name, m in sorted(metrics.items()):
            _, data = data_name(m["run"]["dataset"])     # the run's data (scrubbed), as the leaderboard files it
            axis = category(name)
            config = f"engine={engine}"
            if axis == "latency":
                config += f"; hardware={_hardware(store, engine)}"
            out.append(EvalResult(task_type=task, task_name=_card_task(task), dataset_type=data,
                                  dataset_name=data, dataset_split=split, metric_type=name, metric_name=name,
                                  metric_value=round(float(m["value"]), 6), metric_config=config))
    return out


def card_data(store: Any, record: Any, cards: dict) -> ModelCardData:
    """The YAML front matter: lineage fields, tags and the model-index."""
    hub_base, _, license_ = base_model(record)
    source, _ = dataset_name(record)
    adapter = record.peft_method != "none"
    tags = ["evalhub", record.task] + ([record.peft_method, "peft"] if adapter else [])
    axes = sorted({category(name) for metrics in cards.values() for name in metrics} - {"task"})
    tags += [f"evalhub-{axis}" for axis in axes]
    return ModelCardData(
        model_name=record.name, base_model=hub_base, base_model_relation=("adapter" if adapter else "finetune")
        if hub_base else None, library_name="peft" if adapter else "transformers", pipeline_tag=_pipeline_tag(record.task),
        license=license_ or EMBEDDED_LICENSES.get(source or ""), tags=tags,
        datasets=[source] if source else None, eval_results=eval_results(store, record, cards) or None)


# -- the Markdown body -------------------------------------------------------------------------
def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"


def description(record: Any) -> str:
    _, base, _ = base_model(record)
    _, data = dataset_name(record)
    how = "a full fine-tune" if record.peft_method == "none" else f"a {record.peft_method} adapter"
    labels = f" Labels: {', '.join(f'`{label}`' for label in record.labels)}." if record.labels else ""
    return f"# {record.name}\n\n`{record.id}` is {how} of {base} for {record.task}, trained on `{data}` with evalhub.{labels}"


def lineage(record: Any) -> str:
    rows = [["variant", f"`{record.id}`"], ["config hash", f"`{record.config_hash}`"], ["seed", record.seed]]
    rows += [[f"data hash ({split})", f"`{h}`"] for split, h in sorted(record.dataset.get("hashes", {}).items())]
    rows += [[f"`{pkg}`", version] for pkg, version in sorted(record.versions.items())]
    return "## Lineage\n\n" + _table(["what", "value"], rows)


def training(record: Any) -> str:
    parts = ["## Training setup"]
    hyper = scrub(record.hyperparameters)
    if hyper:
        rows = [[f"`{k}`", f"`{json.dumps(v, default=str)}`"] for k, v in sorted(hyper.items())]
        parts.append(_table(["hyperparameter", "value"], rows))
    else:
        parts.append("No hyperparameters were recorded.")
    if record.peft_method != "none":
        config = json.dumps(scrub(record.peft_config), indent=2, sort_keys=True, default=str)
        parts.append(f"PEFT method `{record.peft_method}`:\n\n```json\n{config}\n```")
    summary = record.train_summary or {}
    if summary.get("steps"):
        parts.append(f"Trained {summary['steps']} steps; best validation score {summary.get('best_validation')} "
                     f"at step {summary.get('best_step')}.")
    return "\n\n".join(parts)


def results(cards: dict) -> str:
    if not cards:
        return "## Evaluation results\n\nThis variant has not been evaluated yet (`evalhub eval VARIANT`)."
    parts = ["## Evaluation results\n\nOne table per leaderboard row: the variant's torch model and each built "
             "engine, per split (↑ higher is better, ↓ lower is better)."]
    for (engine, split), metrics in sorted(cards.items(), key=lambda kv: (kv[0][0] != TORCH_MODEL, kv[0])):
        rows = [[f"`{name}`", category(name), "↑" if m["higher_is_better"] else "↓", _number(m["value"]),
                 "" if m["ci_low"] is None else f"[{_number(m['ci_low'])}, {_number(m['ci_high'])}]"]
                for name, m in sorted(metrics.items(), key=lambda kv: (AXES.index(category(kv[0])), kv[0]))]
        table = _table(["metric", "axis", "", "value", "95% CI"], rows)
        parts.append(f"### engine `{engine}`, split `{split}`\n\n{table}")
    return "\n\n".join(parts)


def _first_row(cards: dict, prefix: str) -> tuple[dict, dict] | None:
    """(metrics with ``prefix``, the whole row) of the first row that has any: the torch model first."""
    for (engine, _), metrics in sorted(cards.items(), key=lambda kv: (kv[0][0] != TORCH_MODEL, kv[0])):
        chosen = {name: m for name, m in metrics.items() if name.startswith(prefix)}
        if chosen:
            return chosen, metrics
    return None


def robustness_limits(store: Any, cards: dict) -> list[str]:
    """The perturbations that flip the model most (by ``flip_<perturbation>``), with an example flip."""
    found = _first_row(cards, "flip_")
    if not found:
        return []
    flips = {name[len("flip_"):]: m for name, m in found[0].items() if name != "flip_rate"}
    worst = sorted(flips.items(), key=lambda kv: -kv[1]["value"])[:SHOWN_LIMITS]
    if not worst:
        return []
    run = worst[0][1]["run"]
    records = [r for r in store.records(run["id"], "robustness") if r.get("type") == "flip"]
    counts = Counter(r["perturbation"] for r in records)
    named = ", ".join(f"`{name}` (flips {m['value']:.1%} of the correct predictions it edits"
                      + (f"; {counts[name]} stored example{'s' * (counts[name] != 1)}" if counts[name] else "")
                      + ")" for name, m in worst)
    lines = [f"- **Robustness**: the perturbations that change its predictions most are {named} "
             f"(engine `{run['engine']}`, split `{run['split']}`)."]
    example = next((r for r in records if r["perturbation"] == worst[0][0]), None)
    if example:
        lines.append(f"  For example `{worst[0][0]}` turned {_quote(example['text'])} into "
                     f"{_quote(example['perturbed'])}, and the prediction from `{example['before']}` to "
                     f"`{example['after']}` (gold `{example['label']}`).")
    return lines


def fairness_limits(store: Any, cards: dict) -> list[str]:
    """The identity groups whose terms move the predicted probabilities most (largest mean |Δp|)."""
    found = _first_row(cards, "fairness_dp/")
    groups = {name.split("/", 1)[1]: m for name, m in (found[0] if found else {}).items() if name.count("/") == 2}
    if not groups:
        return []
    worst = sorted(groups.items(), key=lambda kv: -abs(kv[1]["value"]))[:SHOWN_LIMITS]
    row = found[1]
    named = ", ".join(f"`{group}` (mean |Δp| {abs(m['value']):.3f}"
                      + (f", flip rate {row[f'fairness_flip/{group}']['value']:.1%}" if f"fairness_flip/{group}" in row
                         else "") + ")" for group, m in worst)
    run = worst[0][1]["run"]
    lines = [f"- **Fairness**: swapping identity terms moves its predictions most for {named} "
             f"(engine `{run['engine']}`, split `{run['split']}`)."]
    axis, target = worst[0][0].split("/", 1)
    example = next((r for r in store.records(run["id"], "fairness")
                    if r.get("axis") == axis and r.get("target") == target), None)
    if example:
        lines.append(f"  For example {_quote(example['counterfactual'])} is predicted "
                     f"`{example['counterfactual_prediction']}` where the original is `{example['prediction']}`.")
    return lines


def _quote(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split()).replace("`", "'")
    return f"“{text if len(text) <= width else text[:width - 1] + '…'}”"


def limitations(store: Any, record: Any, cards: dict) -> str:
    _, data = dataset_name(record)
    lines = robustness_limits(store, cards) + fairness_limits(store, cards)
    toxic = _first_row(cards, "toxicity_")
    if toxic:
        values = ", ".join(f"`{name}` {m['value']:.3f}" for name, m in sorted(toxic[0].items()))
        lines.append(f"- **Toxicity of the evaluation texts**: {values}.")
    if not lines:
        lines.append("- No robustness or fairness evaluation is stored for this variant yet "
                     "(`evalhub eval VARIANT --suite robustness` and `--suite safety` score them).")
    lines.append(f"- It was trained and scored on `{data}` only; texts of another domain, language or length "
                 "may score differently.")
    return "## Limitations\n\n" + "\n".join(lines)


def usage(store: Any, record: Any, repo_id: str) -> str:
    """How to load it with transformers (or peft for an adapter) and with an evalhub engine."""
    from hub.registries import TASKS

    task = TASKS.get(record.task)
    code = task.usage_code(record, repo_id, base_model(record)[0])
    engines = store.list_engines(record.id)
    shown = engines[-1].id if engines else "best"
    # TensorRT is named where it can build (an NVIDIA GPU; never for generation, which needs TensorRT-LLM)
    backends = [name for name in task.engines.names() if name != "tensorrt" or task.engines.get(name)().is_available()]
    pull = f"evalhub pull {repo_id}\n" if task.pullable else ""
    shell = (f"{pull}evalhub build-engine {record.id} --backend auto   # or {', '.join(backends)}\n"
             f"evalhub eval {record.id} --engine {shown}\nevalhub serve   # the demo app, on any built engine")
    built = ("Engines built from it: " + ", ".join(f"`{e.id}` ({e.label})" for e in engines) + "."
             if engines else "No engine was built from it yet.")
    return (f"## How to use\n\nWith transformers:\n\n```python\n{code}\n```\n\nWith an evalhub engine "
            f"({', '.join(backends)}: the scores above are per engine). {built}\n\n```bash\n{shell}\n```")


def build_card(store: Any, variant_ref: str, repo_id: str | None = None) -> Card:
    """The card of a variant (id, unique prefix or name): front matter and body from the store.

    ``repo_id``: the Hub repository the usage examples load from (default ``<namespace>/<name>``).
    UserError for an unknown variant. Reads only; no network."""
    record = store.get_variant(variant_ref)
    repo_id = repo_id or f"<namespace>/{record.name}"
    cards = scorecards(store, record.id)
    data = card_data(store, record, cards)
    body = "\n\n".join([description(record), lineage(record), training(record), results(cards),
                        limitations(store, record, cards), usage(store, record, repo_id)])
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")
    return Card(text=str(card), data=card.data, card=card)


def _card_task(task: str) -> str:
    """The model-index task type name the task declares (the pipeline id for a task not installed)."""
    from hub.registries import TASKS

    return TASKS.get(task).card_task if task in TASKS else task


def _pipeline_tag(task: str) -> str:
    from hub.registries import TASKS

    return TASKS.get(task).pipeline_tag if task in TASKS else task
