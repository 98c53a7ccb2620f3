"""Resumable training checkpoints in evalhub's own format: safetensors and JSON, nothing else.

One folder per checkpoint, ``<work>/checkpoints/step-NNNNNNN/``:

    checkpoint.json           format version, process count, accelerate's micro-batch counter
    loop_state.json           the loop's LoopState: step, best metric, history, the data it trains on
    model.safetensors         the unwrapped model (PEFT wrapper included), by safetensors.torch.save_model
                              (which also handles tied weights)
    optimizer.safetensors     every tensor of optimizer.state_dict()["state"], named "<param index>.<name>"
    optimizer.json            the rest of that state dict: param_groups and non-tensor entries (Adafactor's step)
    scheduler.json            the LR scheduler's state_dict (LambdaLR keeps no callables in it)
    scaler.json               the fp16 GradScaler's state_dict, only when there is one
    rng-<process>.safetensors each process's torch RNG states (CPU, and CUDA when present)
    rng-<process>.json        each process's Python ``random`` and numpy RNG states

The sampler needs no file: accelerate's seedable sampler shuffles epoch e from seed + e, and
the loop calls ``set_epoch`` and ``skip_first_batches`` from the step count.

Why hand-written: accelerate's ``save_state``/``load_state`` pickle the optimizer, scheduler,
sampler, RNG and custom states and read them back with ``weights_only=False``, so anyone who
can write into a store (shared, copied, pulled) would run code as the next user who resumes.
Here nothing is ever unpickled: :func:`check_folder` lists the folder before anything is read
and refuses any file outside the set above (an accelerate-format checkpoint of an older evalhub
among them), and :func:`load_checkpoint` reads only safetensors and JSON.

:func:`save_checkpoint` writes into ``.staging-step-NNNNNNN/`` and renames it into place, so a
kill -9 mid-save never leaves a half checkpoint that resume would pick. Only the main process
writes the shared files; each process writes its own RNG files. FSDP and DeepSpeed shard the
model and optimizer, which this format does not gather: they are refused.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hub.errors import UserError, clean, quote_list
from hub.fsutil import write_text_atomic

FORMAT_VERSION = 1
SHARED_FILES = ("checkpoint.json", "loop_state.json", "model.safetensors", "optimizer.safetensors",
                "optimizer.json", "scheduler.json")
OPTIONAL_FILES = ("scaler.json",)
_RNG_FILE = re.compile(r"rng-(0|[1-9][0-9]{0,5})\.(safetensors|json)")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt")
_SHARDED = ("DEEPSPEED", "FSDP", "MEGATRON_LM")


def require_unsharded(accelerator: Any) -> None:
    """Checkpoints hold whole model and optimizer states; refuse the launchers that shard them."""
    kind = getattr(accelerator.distributed_type, "value", str(accelerator.distributed_type))
    if kind in _SHARDED:
        raise UserError(f"train.checkpoint_every and --resume do not support {kind} yet (its states are "
                        f"sharded); launch without {kind} or set train.checkpoint_every to null")


def latest_checkpoint(root: Path) -> Path | None:
    """The newest ``step-*`` folder under ``root`` (staging folders are never named so)."""
    folders = sorted(p for p in root.glob("step-*") if p.is_dir()) if root.is_dir() else []
    return folders[-1] if folders else None


def check_folder(folder: Path) -> None:
    """Refuse ``folder`` unless it holds exactly the files this module writes; reads no file."""
    entries = sorted(folder.iterdir())
    names = [p.name for p in entries]
    expected = set(SHARED_FILES) | set(OPTIONAL_FILES)
    unexpected = [p.name for p in entries if p.is_symlink() or not p.is_file()
                  or (p.name not in expected and not _RNG_FILE.fullmatch(p.name))]
    todo = "delete that folder (or train without --resume) to start over"
    if unexpected and "checkpoint.json" not in names and any(n.endswith(_PICKLE_SUFFIXES) for n in names):
        pickles = [n for n in names if n.endswith(_PICKLE_SUFFIXES)]
        raise UserError(f"--resume: {folder} was written in the old accelerate format (pickles such as "
                        f"{quote_list(pickles, most=3)}) by an older evalhub and cannot be resumed safely, "
                        f"since loading a pickle can run code; nothing was loaded from it; {todo}")
    if unexpected:
        raise UserError(f"--resume: checkpoint folder {folder} holds files evalhub never writes "
                        f"({quote_list(unexpected)}), so it is refused and nothing was loaded from it; {todo}")
    missing = [n for n in SHARED_FILES if n not in names]
    if missing:
        raise UserError(f"--resume: checkpoint folder {folder} is incomplete (missing {quote_list(missing)}); {todo}")


def save_checkpoint(accelerator: Any, model: Any, optimizer: Any, scheduler: Any,
                    folder: Path, loop_state: dict) -> None:
    """Write a checkpoint of the training state to ``folder``; every process must call it."""
    staging = folder.with_name(f".staging-{folder.name}")
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)        # left by a run killed mid-save
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()
    _save_rng(staging, accelerator.process_index)
    if accelerator.is_main_process:
        from safetensors.torch import save_model

        save_model(accelerator.unwrap_model(model), str(staging / "model.safetensors"))
        _save_optimizer(staging, optimizer.state_dict())
        _write_json(staging / "scheduler.json", scheduler.state_dict())
        if accelerator.scaler is not None:
            _write_json(staging / "scaler.json", accelerator.scaler.state_dict())
        _write_json(staging / "loop_state.json", loop_state)
        _write_json(staging / "checkpoint.json", {"format": "evalhub-checkpoint", "version": FORMAT_VERSION,
                                                  "num_processes": accelerator.num_processes,
                                                  "accelerator_step": accelerator.step})
    accelerator.wait_for_everyone()                       # every RNG file is in staging
    if accelerator.is_main_process:
        _fsync_files(staging)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    accelerator.wait_for_everyone()


def read_loop_state(folder: Path) -> dict:
    """The LoopState fields of a checkpoint that :func:`check_folder` accepted."""
    try:
        fields = _read_json(folder / "loop_state.json")
    except (OSError, ValueError) as err:
        fields = err
    if not isinstance(fields, dict):
        raise UserError(f"--resume: {folder / 'loop_state.json'} is not a JSON object; "
                        f"delete that folder (or train without --resume) to start over")
    return fields


def load_checkpoint(accelerator: Any, model: Any, optimizer: Any, scheduler: Any, folder: Path) -> None:
    """Restore what :func:`save_checkpoint` wrote; call :func:`check_folder` first. A damaged file is
    the user's to remove: the run stops with a UserError (having read only safetensors and JSON)."""
    from safetensors import SafetensorError

    try:
        _load(accelerator, model, optimizer, scheduler, folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--resume: checkpoint folder {folder} could not be read ({clean(first, 200)}); "
                        f"delete that folder (or train without --resume) to start over") from err


def _load(accelerator: Any, model: Any, optimizer: Any, scheduler: Any, folder: Path) -> None:
    from safetensors.torch import load_model

    meta = _read_json(folder / "checkpoint.json")
    if meta.get("version") != FORMAT_VERSION:
        raise UserError(f"--resume: {folder} has checkpoint format version {meta.get('version')!r}, this "
                        f"evalhub reads version {FORMAT_VERSION}; train without --resume to start over")
    load_model(accelerator.unwrap_model(model), str(folder / "model.safetensors"))
    optimizer.load_state_dict(_load_optimizer(folder, optimizer.state_dict()))
    known = scheduler.state_dict().keys()              # LambdaLR sets every key it is given as an attribute
    scheduler.load_state_dict({k: v for k, v in _read_json(folder / "scheduler.json").items() if k in known})
    scaler_state = _read_json(folder / "scaler.json") if (folder / "scaler.json").exists() else {}
    if accelerator.scaler is not None and scaler_state:
        accelerator.scaler.load_state_dict(scaler_state)
    accelerator.step = int(meta.get("accelerator_step", 0))
    if meta.get("num_processes") != accelerator.num_processes:
        accelerator.print(f"--resume: {folder.name} was saved by {meta.get('num_processes')} processes, this run "
                          f"has {accelerator.num_processes}: data order and random streams will differ")
    _load_rng(folder, accelerator.process_index)


def prune(root: Path, keep: int) -> None:
    """Keep the newest ``keep`` checkpoints; drop older ones and staging folders left by a kill."""
    for old in sorted(root.glob("step-*"))[:-keep] + sorted(root.glob(".staging-*")):
        shutil.rmtree(old, ignore_errors=True)


def _save_optimizer(folder: Path, state_dict: dict) -> None:
    from safetensors.torch import save_file

    tensors, scalars = {}, {}
    for index, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    save_file(tensors, str(folder / "optimizer.safetensors"))
    _write_json(folder / "optimizer.json", {"param_groups": state_dict["param_groups"], "scalars": scalars})


def _load_optimizer(folder: Path, current: dict) -> dict:
    """The saved state dict; JSON turns tuples (AdamW's betas) into lists: the current groups say which."""
    from safetensors.torch import load_file

    saved = _read_json(folder / "optimizer.json")
    state: dict[int, dict] = {}
    for index, entries in saved["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    for key, tensor in load_file(str(folder / "optimizer.safetensors")).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = tensor
    groups = saved["param_groups"]
    for group, now in zip(groups, current["param_groups"]):
        for key, value in now.items():
            if isinstance(value, tuple) and isinstance(group.get(key), list):
                group[key] = tuple(group[key])
    return {"state": state, "param_groups": groups}


def _save_rng(folder: Path, index: int) -> None:
    from safetensors.torch import save_file

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    save_file(tensors, str(folder / f"rng-{index}.safetensors"))
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    _write_json(folder / f"rng-{index}.json", {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]})


def _load_rng(folder: Path, index: int) -> None:
    from safetensors.torch import load_file

    if not (folder / f"rng-{index}.safetensors").exists() or not (folder / f"rng-{index}.json").exists():
        return                                           # a process the checkpoint did not have: said above
    tensors = load_file(str(folder / f"rng-{index}.safetensors"))
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors) - 1) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    states = _read_json(folder / f"rng-{index}.json")
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _write_json(path: Path, obj: Any) -> None:
    """Strict JSON: a value JSON cannot hold raises instead of being written as its str()."""
    write_text_atomic(path, json.dumps(obj, indent=1) + "\n")


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _fsync_files(folder: Path) -> None:
    """Flush every file before the rename, so the renamed folder is whole even after a power cut."""
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
