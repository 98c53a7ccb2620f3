"""The `train` section of a run config: the shared training loop's hyperparameters (a task may extend it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from hub.config import opt


@dataclass
class TrainConfig:
    learning_rate: float = opt(5e-5, "peak learning rate (5e-5 suits full fine-tuning, 1e-3 LoRA)")
    batch_size: int = opt(16, "examples per optimizer step per process, before accumulation")
    eval_batch_size: int = opt(64, "examples per forward pass when evaluating")
    max_steps: int | None = opt(None, "optimizer steps to run; overrides epochs when set")
    epochs: float = opt(3.0, "passes over the training split when max_steps is not set")
    optimizer: Literal["adamw", "adafactor"] = opt("adamw", "AdamW (torch) or Adafactor (transformers)")
    weight_decay: float = opt(0.01, "decoupled weight decay; not applied to biases and LayerNorm")
    scheduler: Literal["linear", "cosine", "constant"] = opt("linear", "learning-rate schedule after warm-up")
    warmup_ratio: float = opt(0.1, "share of steps with linear warm-up from 0")
    gradient_accumulation_steps: int = opt(1, "micro-batches per optimizer step")
    max_grad_norm: float = opt(1.0, "gradient clipping norm (0 turns it off)")
    mixed_precision: Literal["no", "bf16", "fp16"] = opt("no", "accelerate mixed precision (bf16 uses AMX on recent CPUs)")
    eval_every: int | None = opt(None, "evaluate on the validation split every N steps (None: at the end only)")
    early_stopping_patience: int | None = opt(None, "stop after N evaluations without improvement of metric_for_best")
    metric_for_best: Literal["accuracy", "f1_macro", "loss"] = opt("accuracy", "validation metric for early stopping and best-checkpoint selection")
    checkpoint_every: int | None = opt(None, "save a resumable checkpoint every N steps (for --resume)")
    keep_checkpoints: int = opt(2, "how many recent checkpoints to keep")
    log_every: int = opt(10, "log loss and learning rate to the trackers every N steps")
    num_workers: int = opt(0, "DataLoader worker processes")

    def __post_init__(self) -> None:
        for name in ("learning_rate", "epochs", "weight_decay", "warmup_ratio", "max_grad_norm"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"train.{name} must be a finite number, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"train.learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("train.weight_decay and train.max_grad_norm must be >= 0")
        for name in ("eval_every", "checkpoint_every"):   # 0 or null: off
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0 (0 or null: off), got {getattr(self, name)}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(f"train.early_stopping_patience must be at least 1, got {self.early_stopping_patience}")
        if self.keep_checkpoints < 1 or self.log_every < 1:
            raise ValueError("train.keep_checkpoints and train.log_every must be at least 1")
        if self.num_workers < 0:
            raise ValueError(f"train.num_workers must be >= 0, got {self.num_workers}")
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise ValueError("train.batch_size, eval_batch_size and gradient_accumulation_steps must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be at least 1, got {self.max_steps}")
        if self.epochs <= 0:
            raise ValueError(f"train.epochs must be positive, got {self.epochs}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.early_stopping_patience is not None and not self.eval_every:
            raise ValueError("train.early_stopping_patience needs train.eval_every")
