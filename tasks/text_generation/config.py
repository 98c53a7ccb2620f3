"""The `train` section of a text-generation run config: the shared loop's, plus packing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.config import opt
from hub.train_config import TrainConfig as LoopConfig


@dataclass
class TrainConfig(LoopConfig):
    learning_rate: float = opt(2e-4, "peak learning rate (2e-4 suits LoRA on a small LM, 2e-5 full fine-tuning)")
    batch_size: int = opt(4, "conversations per optimizer step per process, before accumulation")
    eval_batch_size: int = opt(8, "conversations per forward pass when evaluating")
    metric_for_best: Literal["loss"] = opt("loss", "validation metric for early stopping: the loss on the assistant's tokens")
    packing: bool = opt(False, "pack conversations into blocks of model.max_length tokens instead of padding each")
