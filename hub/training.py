"""The training loop every task shares, written for Accelerate.

It reads like accelerate's ``examples/nlp_example.py``: data, model (plus PEFT),
optimizer and schedule, ``accelerator.prepare``, the loop with evaluation, early
stopping and checkpoints, then the variant is saved to the store. The same code runs
as one process or under ``accelerate launch --num_processes N`` (validation gathers
with ``gather_for_metrics``; only the main process writes the variant). Checkpoints are
evalhub's own safetensors + JSON format (:mod:`hub.checkpoint`), never accelerate's pickles.

What differs between tasks is handed in as :class:`TrainHooks` (the task's data loaders,
model, validation metrics and how the variant is saved); the loop itself never looks at
what a batch holds beyond handing it to the model, whose output has a ``loss``.
"""

from __future__ import annotations

import copy
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from hub import checkpoint
from hub.errors import UserError, did_you_mean, quote
from hub.peft_methods import apply_peft

TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow",
                   "comet_ml": "comet_ml", "aim": "aim", "clearml": "clearml", "dvclive": "dvclive",
                   "trackio": "trackio", "swanlab": "swanlab"}


class TrainHooks:
    """What a task hands the loop. ``data`` is what the task's ``check`` read for the run."""

    peft_task_type = "SEQ_CLS"     # peft's task type for the task's models
    forward_kwargs: dict = {}      # extra arguments of the training forward (a causal LM: no KV cache)

    def load_data(self, cfg: Any) -> Any:
        raise NotImplementedError

    def load_tokenizer(self, cfg: Any) -> Any:
        raise NotImplementedError

    def dataloaders(self, cfg: Any, data: Any, tokenizer: Any) -> tuple[Any, Any]:
        """(training loader, validation loader); built on the main process first."""
        raise NotImplementedError

    def load_model(self, cfg: Any, data: Any) -> Any:
        raise NotImplementedError

    def evaluate(self, model: Any, dataloader: Any, accelerator: Any) -> dict[str, float]:
        """Validation metrics over all processes; ``cfg.train.metric_for_best`` must be among them."""
        raise NotImplementedError

    def trains_on(self, data: Any) -> dict:
        """What the run trains on (split hashes, labels): ``--resume`` refuses other data."""
        raise NotImplementedError

    def save(self, store: Any, cfg: Any, model: Any, tokenizer: Any, data: Any, state: Any) -> str:
        raise NotImplementedError


def check_trackers(trackers: list[str]) -> None:
    """UserError for a tracker accelerate does not know, or one that is not installed."""
    import importlib.util

    for name in trackers:
        if name not in TRACKER_MODULES:
            raise UserError(f"tracking.report_to: unknown tracker {quote(name)}{did_you_mean(name, TRACKER_MODULES)}; "
                            f"available: {', '.join(TRACKER_MODULES)}")
        if importlib.util.find_spec(TRACKER_MODULES[name]) is None:
            raise UserError(f"tracking.report_to: {quote(name)} is not installed; pip install {name} (or remove it)")


@dataclass
class LoopState:
    """What a checkpoint must carry beyond model, optimizer, schedule and RNG states to resume exactly."""

    step: int = 0
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    history: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)   # split hashes and labels the run trains on: resume checks them


def run_training(hooks: TrainHooks, cfg: Any, store: Any, *, resume: bool = False, show_progress: bool = True,
                 on_step: Callable[[int, dict], None] | None = None, data: Any = None) -> str | None:
    """Fine-tune per ``cfg`` with the task's ``hooks`` and store the variant; returns its id on
    the main process. ``data``: what the task's ``check`` already read for ``cfg`` (read again
    when not given)."""
    from accelerate.utils import set_seed

    t = cfg.train
    work = store.work_dir(cfg.hash())
    accelerator = _make_accelerator(cfg, work, checkpoints=resume or bool(t.checkpoint_every))
    set_seed(cfg.seed)
    data = data if data is not None else hooks.load_data(cfg)
    tokenizer = hooks.load_tokenizer(cfg)
    with accelerator.main_process_first():
        train_dl, eval_dl = hooks.dataloaders(cfg, data, tokenizer)
    model = hooks.load_model(cfg, data)
    steps_per_epoch = math.ceil(len(train_dl) / accelerator.num_processes / t.gradient_accumulation_steps)
    total_steps = t.max_steps or max(1, math.ceil(t.epochs * steps_per_epoch))
    model = apply_peft(model, cfg.peft, total_steps=total_steps, task_type=hooks.peft_task_type)
    optimizer, scheduler = _optimizer_and_schedule(model, t, total_steps)
    model, optimizer, train_dl, eval_dl = accelerator.prepare(model, optimizer, train_dl, eval_dl)
    accelerator.init_trackers(cfg.tracking.project, config=_flat_hparams(cfg))

    trains_on = hooks.trains_on(data)
    training = (model, optimizer, scheduler)
    state = _restore(accelerator, work, trains_on, training) if resume else _fresh(accelerator, work, trains_on)
    best_weights = None
    model.train()  # from_pretrained returns eval mode: dropout must be on while training
    progress = _progress(total_steps, state.step, show_progress and accelerator.is_local_main_process)
    micro_per_epoch = len(train_dl)
    while state.step < total_steps:
        epoch, done_micro = loop_position(state.step, micro_per_epoch, t.gradient_accumulation_steps)
        train_dl.set_epoch(epoch)
        batches = accelerator.skip_first_batches(train_dl, done_micro) if done_micro else train_dl
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**batch, **hooks.forward_kwargs).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and t.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), t.max_grad_norm)
                optimizer.step()
                if accelerator.sync_gradients:
                    _adalora_update(accelerator, model, cfg, state.step)
                    scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            logs = {"train/loss": accelerator.gather(loss.detach()).mean().item(),
                    "train/lr": scheduler.get_last_lr()[0], "epoch": epoch}
            if t.eval_every and state.step % t.eval_every == 0 or state.step == total_steps:
                metrics = hooks.evaluate(model, eval_dl, accelerator)
                logs.update({f"validation/{k}": v for k, v in metrics.items()})
                improved = _track_best(state, metrics, t)
                if improved and t.early_stopping_patience:
                    best_weights = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
            if state.step % t.log_every == 0 or any(key.startswith("validation/") for key in logs):
                accelerator.log(logs, step=state.step)
            progress.update(1)
            progress.set_postfix(loss=f"{logs['train/loss']:.3f}")
            if on_step is not None:
                on_step(state.step, logs)
            if t.checkpoint_every and state.step % t.checkpoint_every == 0:
                _checkpoint(accelerator, work, state, t.keep_checkpoints, training)
            if state.step >= total_steps or _should_stop(state, t):
                break
        if _should_stop(state, t):
            accelerator.print(f"early stopping at step {state.step}: no gain in validation "
                              f"{t.metric_for_best} for {t.early_stopping_patience} evaluations")
            break
    progress.close()
    if best_weights is not None:
        accelerator.unwrap_model(model).load_state_dict(best_weights)
    accelerator.wait_for_everyone()
    variant_id = None
    if accelerator.is_main_process:
        variant_id = hooks.save(store, cfg, accelerator.unwrap_model(model), tokenizer, data, state)
        # the run is stored: its checkpoints would only let a later --resume store it a second time
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
    accelerator.end_training()
    return variant_id


def loop_position(step: int, micro_per_epoch: int, accumulation: int) -> tuple[int, int]:
    """(epoch, micro-batches of it already done) after ``step`` optimizer steps. Accelerate ends
    each epoch with a step even when the accumulation is short, so an epoch has
    ceil(micro_per_epoch / accumulation) steps, not micro_per_epoch / accumulation."""
    epoch, steps_done = divmod(step, math.ceil(micro_per_epoch / accumulation))
    return epoch, steps_done * accumulation


def _make_accelerator(cfg: Any, work: Path, checkpoints: bool) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration

    trackers = list(cfg.tracking.report_to)
    check_trackers(trackers)
    accelerator = Accelerator(
        # Without a GPU, say so: accelerate then runs `accelerate launch` processes as MULTI_CPU (gloo).
        cpu=not _has_accelerator_device(),
        gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
        mixed_precision=cfg.train.mixed_precision,
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(work), logging_dir=str(work / "logs")),
        # Seedable sampler: epoch e always shuffles the same way, so --resume is exact.
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    if checkpoints:     # before any training time is spent, not at the first save
        checkpoint.require_unsharded(accelerator)
    return accelerator


def _has_accelerator_device() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return (torch.cuda.is_available() or torch.backends.mps.is_available()
            or bool(xpu and xpu.is_available()))


def _optimizer_and_schedule(model: Any, t: Any, total_steps: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_scheduler

    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if t.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        optimizer = Adafactor(groups, lr=t.learning_rate, scale_parameter=False, relative_step=False)
    else:
        optimizer = torch.optim.AdamW(groups, lr=t.learning_rate)
    schedule = "constant_with_warmup" if t.scheduler == "constant" else t.scheduler
    scheduler = get_scheduler(schedule, optimizer, num_warmup_steps=int(t.warmup_ratio * total_steps),
                              num_training_steps=total_steps)
    return optimizer, scheduler


def _adalora_update(accelerator: Any, model: Any, cfg: Any, step: int) -> None:
    """AdaLoRA reallocates ranks between optimizer steps (peft's documented training hook)."""
    if cfg.peft.method == "adalora":
        accelerator.unwrap_model(model).base_model.update_and_allocate(step)


def _track_best(state: LoopState, metrics: dict, t: Any) -> bool:
    value = metrics[t.metric_for_best]
    sign = -1.0 if t.metric_for_best == "loss" else 1.0
    state.history.append({"step": state.step, **metrics})
    if state.best_metric is None or sign * value > sign * state.best_metric:
        state.best_metric, state.best_step, state.evals_without_improvement = value, state.step, 0
        return True
    state.evals_without_improvement += 1
    return False


def _should_stop(state: LoopState, t: Any) -> bool:
    return bool(t.early_stopping_patience) and state.evals_without_improvement >= t.early_stopping_patience


def _checkpoint(accelerator: Any, work: Path, state: LoopState, keep: int, training: tuple) -> None:
    folder = work / "checkpoints" / f"step-{state.step:07d}"
    checkpoint.save_checkpoint(accelerator, *training, folder, asdict(state))
    if accelerator.is_main_process:
        checkpoint.prune(work / "checkpoints", keep)
    accelerator.wait_for_everyone()


def _fresh(accelerator: Any, work: Path, trains_on: dict) -> LoopState:
    """A run from step 0: an earlier run's checkpoints of this config go, so that a later --resume
    continues this run and not the older one (whose later steps would sort after this run's)."""
    old = work / "checkpoints"
    if accelerator.is_main_process and old.is_dir() and any(old.iterdir()):
        accelerator.print(f"starting over: removing the checkpoints of an earlier run in {old} (--resume continues one)")
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return LoopState(data=trains_on)


def _restore(accelerator: Any, work: Path, trains_on: dict, training: tuple) -> LoopState:
    """The loop state of the newest checkpoint, with model, optimizer, schedule and RNGs restored.
    The folder is checked before any file of it is read: it must hold only safetensors and JSON."""
    folder = checkpoint.latest_checkpoint(work / "checkpoints")
    if folder is None:
        accelerator.print(f"--resume: no checkpoint under {work}; starting from step 0")
        return LoopState(data=trains_on)
    checkpoint.check_folder(folder)
    state = LoopState(**checkpoint.read_loop_state(folder))
    if state.data and state.data != trains_on:   # same config, other data: the checkpoint trained on something else
        changed = "labels" if state.data.get("labels") != trains_on.get("labels") else "data"
        raise UserError(f"--resume: the {changed} changed since {folder.name} was saved; "
                        f"train without --resume to start over (or delete {work / 'checkpoints'})")
    state.data = trains_on
    checkpoint.load_checkpoint(accelerator, *training, folder)
    accelerator.print(f"resuming from {folder.name}")
    return state


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="training", unit="step", disable=not enabled)


def _flat_hparams(cfg: Any) -> dict:
    flat = {f"train/{k}": v for k, v in asdict(cfg.train).items()}
    flat.update({"model": cfg.model.name, "data": cfg.data.source, "peft": cfg.peft.method, "seed": cfg.seed})
    return {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in flat.items()}
