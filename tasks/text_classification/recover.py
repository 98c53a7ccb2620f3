"""`evalhub prune`: prune a stored classifier, recover it by distillation, store it as a new variant.

The recovery is a short fine-tune of the pruned model (the student) on the parent's own training
split through the shared Accelerate loop (:func:`hub.training.run_training` with the task's
:class:`~tasks.text_classification.train.ClassificationHooks`): the hooks hand the loop a
:class:`DistillationModel`, whose forward returns the distillation loss as ``loss``, so the loop
itself is unchanged. The loss is Hinton et al.'s::

    alpha * KL(softmax(teacher / T) || softmax(student / T)) * T**2 + (1 - alpha) * cross-entropy

(``T**2`` keeps the soft term's gradients on the scale of the hard one whatever T is). The teacher is
the unpruned parent, frozen and held outside the wrapper's parameters, so the optimizer and
``state_dict`` see the student alone.

The variant records ``parent_id`` (a column the store always had) and, in ``train_summary["pruning"]``,
the settings, what was removed, the recovery settings and the parameter counts before and after.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import torch

from hub.errors import UserError, quote
from tasks.text_classification.prune import (PruneSettings, check_architecture, config_heads, heads_to_remove,
                                             prune_model)
from tasks.text_classification.train import ClassificationHooks


@dataclass
class RecoverySettings:
    steps: int = 100                # optimizer steps of distillation (0: store the pruned model as it is)
    temperature: float = 2.0        # softens both distributions; the KL term is scaled by T**2
    alpha: float = 0.5              # weight of the KL term; 1 - alpha weighs the task's cross-entropy
    learning_rate: float = 5e-5     # full fine-tuning's rate (a LoRA parent's 1e-3 would wreck all weights)

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise UserError(f"--recover-steps {self.steps}: expected 0 or more optimizer steps")
        if not self.temperature > 0:
            raise UserError(f"--temperature {self.temperature:g}: expected a positive number (2 is usual)")
        if not 0 <= self.alpha <= 1:
            raise UserError(f"--alpha {self.alpha:g}: the weight of the distillation term must be in [0, 1]")
        if not self.learning_rate > 0:
            raise UserError(f"--learning-rate {self.learning_rate:g}: expected a positive number")


class DistillationModel(torch.nn.Module):
    """The student, whose training forward also runs the frozen teacher and returns the mixed loss."""

    def __init__(self, student: Any, teacher: Any, temperature: float, alpha: float) -> None:
        super().__init__()
        self.student = student
        self.config = student.config
        self._teacher = [teacher.eval().requires_grad_(False)]   # a list: not a submodule, not in state_dict
        self.temperature, self.alpha = temperature, alpha

    def forward(self, **batch: Any) -> Any:
        out = self.student(**batch)
        if not self.training or "labels" not in batch:
            return out
        teacher = self._teacher[0]
        with torch.no_grad():
            teacher_logits = teacher.to(out.logits.device)(**batch).logits
        out.loss = distillation_loss(out.logits, teacher_logits, batch["labels"], self.temperature, self.alpha)
        return out


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha * KL(teacher_T || student_T) * T**2 + (1 - alpha) * cross-entropy(student, labels)."""
    import torch.nn.functional as F

    t = temperature
    soft = F.kl_div(F.log_softmax(student_logits.float() / t, dim=-1), F.log_softmax(teacher_logits.float() / t, dim=-1),
                    reduction="batchmean", log_target=True) * t * t
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits.float(), labels)


class PruneHooks(ClassificationHooks):
    """The classification hooks with the parent's tokenizer, the distilling student and the pruned save."""

    def __init__(self, parent: Any, student: Any, teacher: Any, tokenizer: Any, recovery: RecoverySettings,
                 lineage: dict) -> None:
        self.parent, self.student, self.teacher, self.tokenizer = parent, student, teacher, tokenizer
        self.recovery, self.lineage = recovery, lineage

    def load_tokenizer(self, cfg: Any) -> Any:
        return self.tokenizer

    def load_model(self, cfg: Any, data: Any) -> Any:
        return DistillationModel(self.student, self.teacher, self.recovery.temperature, self.recovery.alpha)

    def save(self, store: Any, cfg: Any, model: Any, tokenizer: Any, data: Any, state: Any) -> str:
        return save_pruned(store, self.parent, cfg, getattr(model, "student", model), tokenizer, state, self.lineage)


def prune(store: Any, ref: str, *, heads: float, ffn: float, method: str = "taylor", recover_steps: int = 100,
          temperature: float = 2.0, alpha: float = 0.5, learning_rate: float = 5e-5, head_scope: str = "global",
          show_progress: bool = True) -> str:
    """The registered pruner (``hub.registries.PRUNERS``): settings checked first, then :func:`prune_variant`."""
    settings = PruneSettings(heads=heads, ffn=ffn, method=method, head_scope=head_scope)
    recovery = RecoverySettings(steps=recover_steps, temperature=temperature, alpha=alpha, learning_rate=learning_rate)
    return prune_variant(store, ref, settings, recovery, show_progress=show_progress)


def prune_variant(store: Any, ref: str, settings: PruneSettings, recovery: RecoverySettings, *,
                  show_progress: bool = True) -> str:
    """Prune the variant ``ref`` names, recover it, store the result; returns the new variant's id."""
    from hub.data import load_data
    from hub.training import LoopState, run_training
    from tasks.text_classification.predict import load_model

    parent = store.get_variant(ref)
    check_parent(store, parent)
    check_shape(store, parent, settings)   # from config.json alone: before any weights or data are read
    needs_data = settings.method == "taylor" or recovery.steps > 0
    if needs_data and not isinstance(parent.run_config.get("data"), dict):
        raise UserError(f"variant {parent.id} records no training data (it was pulled without --data), which "
                        "--method taylor and the recovery read; pull it again with --data, or prune with "
                        "--method magnitude --recover-steps 0")
    cfg = recovery_config(parent, settings, recovery)
    teacher, tokenizer = load_model(store, parent)
    data = train_dl = None
    hooks = PruneHooks(parent, None, teacher, tokenizer, recovery, {})
    if needs_data:
        data = load_data(cfg.data)
        if list(data.labels) != list(parent.labels):
            raise UserError(f"variant {parent.id}: its data {quote(cfg.data.source)} now has the labels "
                            f"{data.labels}, not the {parent.labels} it was trained on; prune a variant of this data")
        train_dl, _ = hooks.dataloaders(cfg, data, tokenizer)
    batches = _first(train_dl, settings.importance_batches) if settings.method == "taylor" else []
    student, lineage = prune_model(teacher, settings, batches)
    lineage["recovery"] = asdict(recovery)
    hooks.student, hooks.lineage = student, lineage
    if recovery.steps == 0:
        return save_pruned(store, parent, cfg, student, tokenizer, LoopState(), lineage)
    return run_training(hooks, cfg, store, show_progress=show_progress, data=data)


def check_parent(store: Any, parent: Any) -> None:
    """UserError for a variant the pruner cannot take (its task, an adapter without merged weights)."""
    if parent.task != "text-classification":
        raise UserError(f"variant {parent.id} is a {parent.task} model; `evalhub prune` prunes text-classification "
                        "encoders (BERT)")
    if not parent.has_merged:
        from hub.registries import PEFT_METHODS

        method = parent.peft_method
        mergeable = method in PEFT_METHODS.names() and PEFT_METHODS.get(method).mergeable
        how = ("retrain it with `peft: {merge: true}` in its config (evalhub has no separate merge command) and "
               "prune that" if mergeable else
               f"{method} cannot be merged into the weights, so prune a full or LoRA variant of the same data")
        raise UserError(f"variant {parent.id} is a {method} adapter without merged weights; pruning needs the "
                        f"full model: {how}")
    store.variant_folder(parent)


def check_shape(store: Any, parent: Any, settings: PruneSettings) -> None:
    """UserError for an architecture the pruner does not know, or a --heads share that empties a layer."""
    from transformers import AutoConfig

    import tasks.text_classification.pruned_bert  # noqa: F401  (registers pruned BERT with the Auto classes)

    config = AutoConfig.from_pretrained(store.variant_folder(parent) / "model")
    check_architecture(config, f"variant {parent.id}")
    heads_to_remove(config_heads(config), settings.heads)


def recovery_config(parent: Any, settings: PruneSettings, recovery: RecoverySettings) -> Any:
    """The parent's run config with full fine-tuning and the recovery's steps and rate."""
    from hub.run_config import parse_run_config

    raw = {k: v for k, v in parent.run_config.items() if k not in ("train", "peft", "name")}
    train = dict(parent.run_config.get("train") or {})
    train.update(max_steps=max(recovery.steps, 1), learning_rate=recovery.learning_rate, eval_every=None,
                 early_stopping_patience=None, checkpoint_every=None)
    raw.update(train=train, peft={"method": "none"}, name=f"{parent.name}-{tag(settings)}",
               tracking={"report_to": []}, seed=parent.seed)
    return parse_run_config(raw, where=f"variant {parent.id}")


def tag(settings: PruneSettings) -> str:
    scope = "-layer" if settings.head_scope == "layer" else ""
    return f"pruned-h{round(settings.heads * 100)}-f{round(settings.ffn * 100)}{scope}"


def _first(dataloader: Any, n: int) -> list[dict]:
    out = []
    for batch in dataloader:
        out.append(batch)
        if len(out) == n:
            break
    return out


def save_pruned(store: Any, parent: Any, cfg: Any, model: Any, tokenizer: Any, state: Any, lineage: dict) -> str:
    """Write the pruned model as a new variant whose ``parent_id`` is ``parent``'s."""
    import uuid

    from hub.fsutil import write_json_atomic
    from hub.store import VariantRecord
    from hub.variant_save import slug
    from hub.versions import package_versions

    variant_id = f"{slug(parent.name)}-{tag(PruneSettings(**lineage['settings']))}-{uuid.uuid4().hex[:6]}"
    recovered = lineage["recovery"]["steps"] > 0
    settings_hash = hashlib.sha256(json.dumps([cfg.hash(), lineage["settings"], lineage["recovery"]],
                                              sort_keys=True).encode()).hexdigest()[:16]
    record = VariantRecord(
        id=variant_id, name=cfg.name, task=parent.task, base_model=parent.base_model, peft_method="none",
        labels=list(parent.labels), dataset=parent.dataset, peft_config={},
        hyperparameters=asdict(cfg.train) if recovered else {},
        run_config={**parent.run_config, "name": cfg.name, "peft": {"method": "none"}, "train": asdict(cfg.train)},
        config_hash=settings_hash, seed=cfg.seed, versions=package_versions(), parent_id=parent.id,
        train_summary={"steps": state.step, "best_step": state.best_step, "best_validation": state.best_metric,
                       "history": state.history, "pruning": lineage,
                       "trainable_parameters": {"trainable": lineage["parameters"]["after"],
                                                "total": lineage["parameters"]["after"], "fraction": 1.0}})
    with store.stage_variant(variant_id) as tmp:
        tokenizer.save_pretrained(tmp / "tokenizer")
        model.save_pretrained(tmp / "model")
        write_json_atomic(tmp / "variant.json", asdict(record))
    store.add_variant(record)
    return variant_id
