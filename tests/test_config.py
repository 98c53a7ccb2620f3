"""Run configs: round trips, validation messages, registries."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from hub.config import from_dict, help_table, read_yaml, to_dict
from hub.errors import UserError
from hub.registries import PEFT_METHODS, TASKS
from hub.registry import Registry
from hub.run_config import RunConfig, load_run_config, parse_run_config

EXAMPLES = sorted((Path(__file__).parents[1] / "hub" / "examples").glob("*.yaml"))


def test_registry_rejects_duplicates_and_suggests_names():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha", 2)
    with pytest.raises(UserError, match=r"unknown widget 'alpah' \(did you mean 'alpha'\?\); available: alpha"):
        reg.get("alpah")


def test_registry_lazy_target_imports_on_first_get():
    reg: Registry = Registry("thing")
    reg.register("join", "os.path:join")
    assert reg.get("join")("a", "b") == "a/b"
    with pytest.raises(ValueError, match="module:attr"):
        reg.register("bad", "no-colon")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_configs_validate_and_round_trip(path):
    cfg = load_run_config(path)
    again = parse_run_config(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again.to_dict() == cfg.to_dict()
    assert again.hash() == cfg.hash()


@pytest.mark.parametrize("method", ["none", *PEFT_METHODS.names()])
def test_every_peft_method_round_trips(method):
    import hub.peft_methods  # noqa: F401  (registers the methods)

    cfg = parse_run_config({"peft": {"method": method}})
    assert parse_run_config(cfg.to_dict()).to_dict() == cfg.to_dict()
    if method != "none":
        built = PEFT_METHODS.get(method).build(cfg.peft.options, total_steps=50)
        assert built.task_type == "SEQ_CLS"


@pytest.mark.parametrize("task", TASKS.names())
def test_every_task_train_config_round_trips(task):
    spec = TASKS.get(task)
    default = spec.train_config()
    assert from_dict(spec.train_config, to_dict(default), "train") == default
    assert all(help for _, _, help in help_table(spec.train_config)), "every field needs help text"


def test_every_config_field_has_help():
    from hub import run_config

    for cls in (run_config.ModelConfig, run_config.DataConfig, run_config.PeftSection,
                run_config.EvalConfig, run_config.TrackingConfig, RunConfig):
        missing = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help")]
        assert not missing, f"{cls.__name__} fields without help: {missing}"


@pytest.mark.parametrize("data, message", [
    ({"train": {"lerning_rate": 1e-3}}, r"config\.train: unknown key 'lerning_rate' \(did you mean 'learning_rate'\?\)"),
    ({"modle": {}}, r"config: unknown key 'modle' \(did you mean 'model'\?\)"),
    ({"train": {"batch_size": "big"}}, r"config\.train\.batch_size: expected int, got str 'big'"),
    ({"train": {"optimizer": "adamm"}}, r"config\.train\.optimizer: 'adamm' is not one of adamw, adafactor \(did you mean 'adamw'\?\)"),
    ({"peft": {"method": "lroa"}}, r"config\.peft\.method: unknown PEFT method 'lroa' \(did you mean 'lora'\?\)"),
    ({"peft": {"method": "lora", "options": {"rank": 4}}}, r"unknown LoraConfig option 'rank'"),
    ({"task": "text-clasification"}, r"config\.task: unknown task 'text-clasification' \(did you mean 'text-classification'\?\)"),
    ({"data": {"test_fraction": 0.7, "validation_fraction": 0.3}}, r"must leave at least 10% for training"),
    ({"train": {"early_stopping_patience": 2}}, r"needs train\.eval_every"),
])
def test_bad_configs_name_the_problem(data, message):
    with pytest.raises(UserError, match=message):
        parse_run_config(data)


def test_yaml_scientific_notation_is_a_float():
    cfg = parse_run_config(yaml.safe_load("train: {learning_rate: 5e-5}"))
    assert cfg.train.learning_rate == pytest.approx(5e-5)


def test_read_yaml_errors(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {learning_rate: [1, 2\n")
    with pytest.raises(UserError, match=r"malformed YAML at line \d+"):
        read_yaml(bad)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match="not a UTF-8 text file"):
        read_yaml(latin)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(UserError, match="expected a YAML mapping"):
        read_yaml(scalar)
