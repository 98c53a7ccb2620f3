"""Run configs: dataclasses with help text, loaded from YAML and checked before anything runs.

A run config says *what* to do (model, data, task, PEFT method, training budget,
evaluation suite); the task's Python says *how*. Every field has a default and a
one-line ``metadata={"help": ...}``; cross-field checks live in ``__post_init__``.
Unknown keys, wrong types and missing required fields are :class:`UserError` s that
name the file, the section and the closest valid key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hub.errors import UserError, did_you_mean


def _field(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


opt = _field  # short alias used by every config module


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """Check (and lightly coerce) ``value`` against annotation ``tp``; raise UserError."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"{where}: unexpected null")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise UserError(f"{where}: {value!r} is not one of {', '.join(map(str, choices))}{hint}")
        return value
    if tp in (list, tuple, dict):   # a bare annotation checks like its generic form
        origin = tp
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 5e-5 as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise UserError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    return value


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise UserError(f"{where}: unknown key '{key}'{did_you_mean(str(key), fields)}; "
                            f"valid keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _check_type(data[name], hints[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{sub}: required field is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # __post_init__ checks
        raise UserError(f"{where}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """Dataclass → plain dict (for YAML/JSON round trips and hashing)."""
    return dataclasses.asdict(obj)


def config_hash(obj: Any) -> str:
    """A stable short hash of a config (sorted JSON of its dict)."""
    blob = json.dumps(to_dict(obj), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, turning every file problem into one clear UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:   # unreadable: permissions, a folder named like a file, …
        raise UserError(f"{path}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: malformed YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a YAML mapping at the top level")
    return data


def help_table(cls: type) -> list[tuple[str, str, str]]:
    """(name, default, help) rows for a config class, for docs and `--help`."""
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        rows.append((f.name, repr(default), f.metadata.get("help", "")))
    return rows


__all__ = ["dataclass", "opt", "from_dict", "to_dict", "config_hash", "read_yaml", "help_table"]
