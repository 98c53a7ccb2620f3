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

from hub.errors import UserError, clean, did_you_mean, quote


def _field(default: Any = dataclasses.MISSING, help: str = "", **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


opt = _field  # short alias used by every config module


def _show(value: Any) -> str:
    """A config value for a message: its repr, escaped and cut."""
    return clean(repr(value), 60)


def check_type(value: Any, tp: Any, where: str) -> Any:
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
                return check_type(value, arg, where)
            except UserError as exc:
                errors.append(exc)
        raise errors[0] if errors else UserError(f"{where}: unexpected null")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            hint = did_you_mean(str(value), [str(c) for c in choices])
            raise UserError(f"{where}: {_show(value)} is not one of {', '.join(map(str, choices))}{hint}")
        return value
    if tp in (list, tuple, dict):   # a bare annotation checks like its generic form
        origin = tp
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {type(value).__name__} {_show(value)}")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [check_type(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
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
        raise UserError(f"{where}: expected {tp.__name__}, got {type(value).__name__} {_show(value)}")
    return value


def from_dict(cls: type, data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, naming unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__} {_show(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise UserError(f"{where}: unknown key {quote(key)}{did_you_mean(str(key), fields)}; "
                            f"valid keys: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = check_type(data[name], hints[name], sub)
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


MAX_CONFIG_BYTES = 1 << 20   # a run config or suite is a page of YAML; a megabyte is not one
MAX_YAML_DEPTH = 32          # sections nest three or four deep; past this is not a config


def load_yaml_text(text: str, where: str) -> Any:
    """``yaml.safe_load`` of a config's text, refusing what a config never needs.

    Anchors and aliases are refused: expanding nested aliases costs memory and time
    exponential in the file's size (an 862-byte "billion laughs" document kept the hash of
    its config busy past 90 s). So is nesting deeper than :data:`MAX_YAML_DEPTH`, which
    PyYAML's recursive composer cannot take. The events are scanned first, in one linear
    pass, before any node is built.
    """
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                mark = event.start_mark
                raise UserError(f"{where}: YAML anchors and aliases (& and *) are not allowed in configs, at line "
                                f"{mark.line + 1}, column {mark.column + 1}; write the values out")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise UserError(f"{where}: YAML nested more than {MAX_YAML_DEPTH} levels deep at line "
                                    f"{event.start_mark.line + 1}; a config is a few sections of keys")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{where}: malformed YAML{at}: {clean(problem, 200)}") from None


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, turning every file problem into one clear UserError."""
    where = clean(path, 200)
    try:
        path = Path(path)
        found = path.is_file()
    except (OSError, ValueError):   # a name no file can have: a NUL byte, too long
        found = False
    if not found:
        raise UserError(f"{where}: config file not found")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"{where}: {path.stat().st_size:,} bytes is too large for a config "
                            f"(at most {MAX_CONFIG_BYTES:,}); point at the YAML run config or suite file")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{where}: not a UTF-8 text file") from None
    except OSError as exc:   # unreadable: permissions, a folder named like a file, …
        raise UserError(f"{where}: cannot read it ({exc.strerror or type(exc).__name__})") from None
    data = load_yaml_text(text, where)
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a YAML mapping at the top level")
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
