"""What a task plugin provides: its train-section config, its pre-run checks, its trainer and its predictor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class TaskSpec:
    name: str                                  # Hugging Face pipeline id
    train_config: type                         # dataclass for the run config's `train` section
    train: Callable[..., str]                  # (run_config, store, *, resume, data=check's result or None, …) -> variant id
    load_predictor: Callable[..., Any]         # (store, variant_record, **options) -> Predictor
    # (run_config) -> what the run will read (handed to `train` as data=, so it is read once), or None:
    # UserError for anything the run would fail on (model, PEFT options, trackers, data, eval split);
    # `validate` and `train` call it before any work
    check: Callable[[Any], Any] = lambda cfg: None
