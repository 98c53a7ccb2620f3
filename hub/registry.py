"""One generic registry for tasks, evaluators, PEFT methods and engines.

Entries are registered once, by name; a duplicate name is rejected at registration.
A target may be the object itself or a lazy ``"module:attr"`` string, imported on first
``get`` so that heavy backends (onnxruntime, TensorRT) stay out of ``import hub``.
Unknown names raise :class:`~hub.errors.UserError` with "did you mean … / available: …".

Plugins register themselves in their own package (as peft's ``register_peft_method`` does);
a registry built with ``discover`` calls it before its first lookup, so the packages that
hold the plugins are imported by name (:mod:`hub.plugins`), never by the core's code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from hub.errors import UserError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry map with duplicate checks, lazy targets and helpful lookups."""

    def __init__(self, kind: str, discover: Callable[[], None] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        self._discover = discover

    def _found(self) -> dict[str, T | str]:
        """The entries, after the plugins have registered theirs (once)."""
        if self._discover is not None:
            discover, self._discover = self._discover, None
            discover()
        return self._entries

    def register(self, name: str, target: T | str | None = None):
        """Register ``target`` under ``name``; without a target, act as a decorator."""
        if target is None:
            def decorator(obj: T) -> T:
                self.register(name, obj)
                return obj
            return decorator
        if not name or name != name.strip():
            raise ValueError(f"{self.kind} name {name!r} must be a non-empty stripped string")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"lazy {self.kind} target {target!r} must look like 'module:attr'")
        self._entries[name] = target
        return target

    def get(self, name: str) -> T:
        """Return the entry for ``name``, importing a lazy target on first use."""
        if name not in self._found():
            raise UserError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            module_name, attr = target.split(":", 1)
            target = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        found = self._found()
        return (f"unknown {self.kind} '{name}'{did_you_mean(name, found)}; "
                f"available: {', '.join(sorted(found)) or 'none'}")

    def names(self) -> list[str]:
        return sorted(self._found())

    def __contains__(self, name: object) -> bool:
        return name in self._found()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._found())
