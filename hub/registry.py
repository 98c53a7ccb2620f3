"""One generic registry for tasks, evaluators, PEFT methods and engines.

Entries are registered once, by name; a duplicate name is rejected at registration.
A target may be the object itself or a lazy ``"module:attr"`` string, imported on first
``get`` so that heavy backends (onnxruntime, TensorRT) stay out of ``import hub``.
Unknown names raise :class:`~hub.errors.UserError` with "did you mean … / available: …".
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from hub.errors import UserError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry map with duplicate checks, lazy targets and helpful lookups."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

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
        if name not in self._entries:
            raise UserError(self.unknown_message(name))
        target = self._entries[name]
        if isinstance(target, str):
            module_name, attr = target.split(":", 1)
            target = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def unknown_message(self, name: str) -> str:
        return (f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}; "
                f"available: {', '.join(sorted(self._entries)) or 'none'}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)
