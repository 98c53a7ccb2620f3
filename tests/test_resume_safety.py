"""--resume reads only safetensors and JSON: a checkpoint folder holding anything else is refused.

The plain full fine-tune resume is checked for exactness in test_train.py; here the optimizer
and adapter states the new format must round-trip, a save killed half way, planted pickles,
and accelerate's old layout.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from hub.errors import UserError
from hub.run_config import parse_run_config
from tests.conftest import tiny_config
from tests.test_train import _weights, train

ROOT = Path(__file__).resolve().parents[1]
LOOP_FILES = [ROOT / "hub" / "checkpoint.py", ROOT / "hub" / "training.py",
              *sorted((ROOT / "tasks").glob("*/*.py"))]   # the shared loop, its checkpoints, every task


class Interrupt(Exception):
    pass


def stop_at(step_to_stop: int):
    def on_step(step, logs):
        if step == step_to_stop:
            raise Interrupt
    return on_step


class Payload:
    """Unpickling this creates ``marker``: what a hostile file in a shared store would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def checkpoints_of(store, cfg) -> Path:
    return store.work_dir(parse_run_config(cfg).hash()) / "checkpoints"


def interrupted(store, cfg, step: int) -> Path:
    """Train ``cfg`` until ``step`` raises; the checkpoints folder it leaves."""
    with pytest.raises(Interrupt):
        train(store, cfg, on_step=stop_at(step))
    return checkpoints_of(store, cfg)


def assert_same_run(reference_store, reference_id, resumed_store, resumed_id):
    reference, resumed = _weights(reference_store, reference_id), _weights(resumed_store, resumed_id)
    assert reference.keys() == resumed.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], atol=0, rtol=0, msg=name)
    history = [reference_store.get_variant(reference_id).train_summary["history"],
               resumed_store.get_variant(resumed_id).train_summary["history"]]
    assert history[0] == history[1]


@pytest.mark.parametrize("overrides", [
    # Adafactor keeps an int step and tensor RMS per parameter; accumulation exercises accelerate's counter
    {"train": {"optimizer": "adafactor", "gradient_accumulation_steps": 2, "eval_every": 2}},
    # a PEFT-wrapped model; AdamW's betas are a tuple that JSON turns into a list
    {"peft": {"method": "lora", "options": {"r": 4, "lora_alpha": 8}}, "train": {"eval_every": 2}},
], ids=["adafactor-accumulation", "lora"])
def test_resume_in_the_new_format_is_exact(tmp_path, tiny_model_dir, tiny_csv, overrides):
    from hub.store import Store

    cfg = tiny_config(tiny_model_dir, tiny_csv, **overrides)
    cfg["train"].update(max_steps=6, checkpoint_every=2, learning_rate=5e-3)
    straight, resumed = Store(tmp_path / "a"), Store(tmp_path / "b")
    reference_id = train(straight, cfg)
    folder = interrupted(resumed, cfg, 5) / "step-0000004"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.json", "loop_state.json", "model.safetensors", "optimizer.json",
        "optimizer.safetensors", "rng-0.json", "rng-0.safetensors", "scheduler.json"]
    assert_same_run(straight, reference_id, resumed, train(resumed, cfg, resume=True))


def test_a_save_killed_half_way_is_never_resumed_from(tmp_path, tiny_model_dir, tiny_csv, monkeypatch):
    from hub.store import Store
    from hub import checkpoint

    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 6, "checkpoint_every": 2})
    straight, resumed = Store(tmp_path / "a"), Store(tmp_path / "b")
    reference_id = train(straight, cfg)
    original = checkpoint._save_optimizer

    def dies_at_step_4(folder, state_dict):
        if folder.name.endswith("step-0000004"):
            raise Interrupt                                 # as a kill -9 would, after some files are written
        original(folder, state_dict)

    monkeypatch.setattr(checkpoint, "_save_optimizer", dies_at_step_4)
    with pytest.raises(Interrupt):
        train(resumed, cfg)
    monkeypatch.undo()
    root = checkpoints_of(resumed, cfg)
    assert sorted(p.name for p in root.iterdir()) == [".staging-step-0000004", "step-0000002"]
    assert_same_run(straight, reference_id, resumed, train(resumed, cfg, resume=True))


@pytest.fixture
def no_torch_load(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("resume called torch.load")
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("planted", ["custom_checkpoint_0.pkl", "optimizer.bin", "random_states_0.pkl", "model.pt"])
def test_a_planted_pickle_is_refused_and_never_run(tmp_path, store, tiny_model_dir, tiny_csv, planted, no_torch_load):
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 6, "checkpoint_every": 2})
    latest = interrupted(store, cfg, 3) / "step-0000002"
    marker, probe = tmp_path / "pwned", tmp_path / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))
    assert probe.exists(), "the payload must really run when unpickled"
    (latest / planted).write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UserError, match=rf"step-0000002 holds files evalhub never writes \('{planted}'\).*"
                                        r"delete that folder \(or train without --resume\)"):
        train(store, cfg, resume=True)
    assert not marker.exists()
    assert store.list_variants() == []


def test_a_pickle_in_place_of_a_safetensors_file_is_not_run(tmp_path, store, tiny_model_dir, tiny_csv, no_torch_load):
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 6, "checkpoint_every": 2})
    latest = interrupted(store, cfg, 3) / "step-0000002"
    marker = tmp_path / "pwned"
    (latest / "optimizer.safetensors").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(UserError, match=r"step-0000002 could not be read .*delete that folder"):
        train(store, cfg, resume=True)
    assert not marker.exists()


def test_a_checkpoint_in_accelerates_old_layout_is_refused(tmp_path, store, tiny_model_dir, tiny_csv, no_torch_load):
    """What accelerate's save_state wrote for this loop (scheduler as a custom object), plus loop_state.json."""
    from safetensors.torch import save_file

    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 6, "checkpoint_every": 2})
    old = checkpoints_of(store, cfg) / "step-0000004"
    old.mkdir(parents=True)
    marker = tmp_path / "pwned"
    save_file({"w": torch.zeros(1)}, str(old / "model.safetensors"))
    for name in ("optimizer.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl"):
        (old / name).write_bytes(pickle.dumps(Payload(marker)))
    (old / "loop_state.json").write_text('{"step": 4, "data": {}}')
    with pytest.raises(UserError, match=r"step-0000004 was written in the old accelerate format .*"
                                        r"'custom_checkpoint_0.pkl'.* cannot be resumed safely"):
        train(store, cfg, resume=True)
    assert not marker.exists()


def test_the_task_never_unpickles():
    sources = LOOP_FILES
    assert any(p.name == "checkpoint.py" for p in sources)
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for call in ("torch.load", "pickle.load", "load_state(", "weights_only=False)"):
            assert call not in text, f"{path.name} contains {call}"


def test_a_fresh_run_removes_an_earlier_runs_checkpoints(store, tiny_model_dir, tiny_csv):
    """Without --resume a run starts over: an older run's later step must not be what --resume picks."""
    cfg = tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 6, "checkpoint_every": 2})
    older = checkpoints_of(store, cfg) / "step-0000099"
    older.mkdir(parents=True)
    (older / "loop_state.json").write_text('{"step": 99, "data": {}}')
    left = interrupted(store, cfg, 3)
    assert sorted(p.name for p in left.glob("step-*")) == ["step-0000002"]
