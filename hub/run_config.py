"""The run config: what to fine-tune, on which data, how, and how to score it.

YAML says what, Python says how. The shared sections live here; the ``data`` and ``train``
sections belong to the task and are parsed by its own dataclasses (``Task.data_config``,
``Task.train_config``), the task looked up in the registry by the ``task`` key. A config
that names no model or data gets the task's embedded defaults. :class:`DataConfig` is the
data section of tasks over labelled text (``hub.data`` reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import config_hash, from_dict, opt, read_yaml, to_dict
from hub.errors import UserError


@dataclass
class ModelConfig:
    name: str = opt("minilm", "an embedded alias (when not given, the task's default: 'minilm', the embedded all-MiniLM-L6-v2, for text-classification; 'smollm2' for text-generation), a local model folder, or a Hub id (online only)")
    max_length: int = opt(128, "tokens per example; longer texts are truncated (256 costs 2.2x per step for no gain on bbc-news)")
    revision: str | None = opt(None, "Hub revision (branch, tag or commit) when `name` is a Hub id")
    trust_remote_code: bool = opt(False, "run code shipped with a Hub model; off unless you trust its author")

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"model.max_length must be at least 8, got {self.max_length}")


@dataclass
class DataConfig:
    source: str = opt("bbc-news", "embedded name (bbc-news, tweet-sentiment), a CSV/JSONL/Parquet file, a datasets.save_to_disk folder, or a Hub dataset id")
    text_column: str = opt("text", "column holding the input text")
    label_column: str = opt("label", "column holding the class label (names or integers)")
    train_split: str = opt("train", "split used for training when the data comes with splits")
    validation_split: str = opt("validation", "split used for evaluation during training")
    test_split: str = opt("test", "split used for the final evaluation")
    validation_fraction: float = opt(0.1, "share held out for validation when the data has no splits")
    test_fraction: float = opt(0.2, "share held out for test when the data has no splits")
    split_seed: int = opt(42, "seed of the stratified split, independent of the training seed")
    max_examples: int | None = opt(None, "stratified subsample of this many examples before splitting (quick runs)")
    deduplicate: bool = opt(True, "drop exact duplicate texts before carving splits, so no copy is both trained "
                                  "on and scored (variants stored without this key were split with duplicates)")

    def __post_init__(self) -> None:
        if not 0 <= self.split_seed < 2**32:
            raise ValueError(f"data.split_seed must be in [0, 2**32), got {self.split_seed}")
        if not 0 <= self.validation_fraction < 1 or not 0 < self.test_fraction < 1:
            raise ValueError("data.validation_fraction must be in [0, 1) and data.test_fraction in (0, 1)")
        if self.validation_fraction + self.test_fraction >= 0.9:
            raise ValueError("data.validation_fraction + data.test_fraction must leave at least 10% for training")
        if self.max_examples is not None and self.max_examples < 10:
            raise ValueError(f"data.max_examples must be at least 10, got {self.max_examples}")


@dataclass
class PeftSection:
    method: str = opt("none", "'none' for full fine-tuning, or a PEFT method: lora, adalora, ia3, prompt_tuning")
    options: dict = opt({}, "keyword arguments of the method's peft config (e.g. r, lora_alpha, target_modules)")
    merge: bool = opt(True, "also save a copy with the adapter merged into the base weights, where the method allows it")


def check_eval_numbers(batch_size: int, bootstrap: int, prefix: str = "") -> None:
    """ValueError unless the batch size is >= 1 and the bootstrap count >= 0 (both whole numbers)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{prefix}batch_size must be a whole number >= 1, got {batch_size!r}")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValueError(f"{prefix}bootstrap must be a whole number >= 0 (0 turns it off), got {bootstrap!r}")


@dataclass
class EvalConfig:
    suite: str = opt("default", "evaluation suite run after training: a built-in name or a suite YAML file")
    split: str = opt("test", "split the suite scores: test or validation")
    batch_size: int = opt(64, "examples per forward pass during evaluation")
    bootstrap: int = opt(1000, "bootstrap resamples for the headline metric's confidence interval (0 turns it off)")

    def __post_init__(self) -> None:
        check_eval_numbers(self.batch_size, self.bootstrap, "eval.")


@dataclass
class TrackingConfig:
    report_to: list[str] = opt(["tensorboard"], "accelerate trackers: tensorboard, wandb, … ([] for none)")
    project: str = opt("evalhub", "project name the trackers log under")


@dataclass
class RunConfig:
    task: str = opt("text-classification", "Hugging Face pipeline id of the task")
    name: str | None = opt(None, "human name of the variant (defaults to dataset-model-method)")
    seed: int = opt(42, "seed for weights init, data order and dropout")
    model: ModelConfig = opt(None, "which model to fine-tune")
    data: Any = opt(None, "where the data comes from and how it is split (the task's data section)")
    peft: PeftSection = opt(None, "full fine-tuning or a PEFT method")
    train: Any = opt(None, "the task's training hyperparameters")
    eval: EvalConfig = opt(None, "what to score after training")
    tracking: TrackingConfig = opt(None, "experiment tracking")

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        self.model = self.model or ModelConfig()
        self.peft = self.peft or PeftSection()
        self.eval = self.eval or EvalConfig()
        self.tracking = self.tracking or TrackingConfig()

    def to_dict(self) -> dict:
        return to_dict(self)

    def hash(self) -> str:
        return config_hash(self)


def parse_run_config(data: dict, where: str = "config") -> RunConfig:
    """Validate a raw mapping into a RunConfig, PEFT options and train section included."""
    from hub.suites import load_suite
    from hub.peft_methods import validate_peft_section
    from hub.registries import TASKS

    data = dict(data)
    train = data.pop("train", None)
    data_section = data.pop("data", None)
    task_name = data.get("task", "text-classification")
    if not isinstance(task_name, str):
        raise UserError(f"{where}.task: expected a task name such as 'text-classification'")
    try:
        task = TASKS.get(task_name)
    except UserError as exc:
        raise UserError(f"{where}.task: {exc}") from None
    model = data.get("model")
    if isinstance(model, dict) and "name" not in model or model is None:   # the task's embedded default
        data["model"] = {**(model or {}), "name": task.default_model}
    if data_section is None:
        data_section = {"source": task.default_data}
    elif isinstance(data_section, dict) and "source" not in data_section:
        data_section = {**data_section, "source": task.default_data}
    evaluation = data.get("eval")
    if evaluation is None or isinstance(evaluation, dict) and "suite" not in evaluation:
        data["eval"] = {**(evaluation or {}), "suite": task.default_suite}
    cfg = from_dict(RunConfig, data, where)
    cfg.data = from_dict(task.data_config, data_section, f"{where}.data")
    cfg.train = from_dict(task.train_config, train, f"{where}.train")
    validate_peft_section(cfg.peft, f"{where}.peft")
    try:   # a suite that cannot run fails now, not after training
        suite = load_suite(cfg.eval.suite)
        wrong = [name for name, _ in suite.steps() if name not in task.evaluators]
        if wrong:
            raise UserError(f"suite {suite.name!r} runs {', '.join(wrong)}, which do not apply to task {task.name}; "
                            f"try suite {task.default_suite!r}")
    except UserError as exc:
        raise UserError(f"{where}.eval.suite: {exc}") from None
    return cfg


def load_run_config(path: str | Path) -> RunConfig:
    """Read and validate a YAML run config; every problem is one UserError naming the file."""
    return parse_run_config(read_yaml(path), where=str(path))
