"""Evaluation suites: named lists of evaluators, with options, read from YAML.

Suites name evaluators in YAML (a registered suite folder's ``<name>.yaml``, or any YAML
file a ``--suite`` path names), each optionally with options:
``evaluators: [classification, {robustness: {severity: 0.3}}]``. An evaluator declares its
options as a dataclass in its ``options`` attribute (None: it takes none but ``bootstrap``),
so a suite with an unknown evaluator or option fails when it is loaded, before any model
runs. Suite folders are registered by the packages that ship suites (``evaluators``
registers ``evaluators/suites``); this module reads them and imports no evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.config import from_dict, opt, read_yaml
from hub.errors import UserError, clean, quote
from hub.registries import EVALUATORS

SUITE_DIRS: list[Path] = []   # folders of built-in suites, registered by plugin packages


def _discover() -> None:
    from hub.plugins import load_plugins

    load_plugins()


@dataclass
class Suite:
    name: str = opt(None, "suite name")
    description: str = opt("", "what the suite measures")
    evaluators: list[Any] = opt([], "evaluator names, or {name: {option: value}} mappings, run in order")

    def steps(self) -> list[tuple[str, dict]]:
        """(evaluator name, options) pairs."""
        out = []
        for item in self.evaluators:
            if isinstance(item, str):
                out.append((item, {}))
            elif isinstance(item, dict) and len(item) == 1:
                (name, options), = item.items()
                if not isinstance(name, str):
                    raise UserError(f"suite {quote(self.name)}: an evaluator's name must be text, got {clean(repr(name), 60)}")
                if options is not None and not isinstance(options, dict):
                    raise UserError(f"suite {quote(self.name)}: the options of {quote(name)} must be a mapping of "
                                    f"option: value, got {type(options).__name__} {clean(repr(options), 60)}")
                out.append((name, dict(options or {})))
            else:
                raise UserError(f"suite {quote(self.name)}: each evaluator must be a name or a one-key mapping, "
                                f"got {clean(repr(item), 60)}")
        return out


def available_suites() -> list[str]:
    _discover()
    return sorted({p.stem for folder in SUITE_DIRS for p in folder.glob("*.yaml")})


def suite_path(ref: str) -> Path:
    """The YAML file of a suite: a built-in suite's name, or the path of a suite file."""
    from hub.errors import did_you_mean

    if not isinstance(ref, str) or not ref or "\x00" in ref or len(ref) > 4096:
        raise UserError(f"suite {quote(ref)}: give a built-in suite's name ({', '.join(available_suites())}) "
                        "or the path of a suite YAML file")
    _discover()
    try:
        builtin = next((folder / f"{ref}.yaml" for folder in SUITE_DIRS if (folder / f"{ref}.yaml").is_file()), None)
        if "/" not in ref and builtin is not None:
            return builtin
        path = Path(ref).expanduser()
        if path.suffix in (".yaml", ".yml") or path.is_file():
            return path              # read_yaml says so when it does not exist
    except OSError:              # a name the file system cannot take (too long, …)
        pass
    raise UserError(f"unknown suite {quote(ref)}{did_you_mean(ref, available_suites())}; "
                    f"available: {', '.join(available_suites())}, or the path of a suite YAML file")


def load_suite(ref: str) -> Suite:
    """Read and check a suite: every evaluator exists and takes the options it is given."""
    path = suite_path(ref)
    suite = from_dict(Suite, read_yaml(path), str(path))
    suite.name = suite.name or path.stem
    steps = suite.steps()
    if not steps:
        raise UserError(f"{path}: the suite names no evaluators; list them under 'evaluators:'")
    names = [name for name, _ in steps]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:   # their metrics and records would share names in one run
        raise UserError(f"{path}: the suite names {', '.join(twice)} more than once; give each evaluator one step "
                        "(run a second suite for other options)")
    for evaluator, options in steps:
        check_options(EVALUATORS.get(evaluator), evaluator, options, f"{path}: evaluator '{evaluator}'")
    return suite


def check_options(evaluator_cls: type, name: str, options: dict, where: str) -> None:
    """UserError unless ``options`` are ones ``evaluator_cls`` takes (``bootstrap`` always is)."""
    own = {k: v for k, v in options.items() if k != "bootstrap"}
    if "bootstrap" in options and (not isinstance(options["bootstrap"], int) or options["bootstrap"] < 0):
        raise UserError(f"{where}: bootstrap must be a whole number >= 0, got {options['bootstrap']!r}")
    schema = getattr(evaluator_cls, "options", None)
    if schema is None:
        if own:
            raise UserError(f"{where}: '{name}' takes no options besides bootstrap, got {', '.join(own)}")
        return
    from_dict(schema, own, f"{where} options")
