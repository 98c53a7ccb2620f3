"""Finding the plugins: the packages that register tasks, evaluators and engine backends.

The core never imports a plugin's code. It imports, by name and once, the packages that
register plugins (each registers its own entries in its ``__init__``, lazily as
``"module:attr"`` strings, so this costs milliseconds): the built-in ``tasks``,
``evaluators`` and ``hub.engines``, then any installed distribution's entry points in the
``evalhub.plugins`` group (``[project.entry-points."evalhub.plugins"] mine = "my_pkg"``).
A new task is a folder under ``tasks/`` whose ``__init__`` calls
``TASKS.register(name, ...)``: ``tasks/__init__.py`` imports every subpackage.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

log = logging.getLogger(__name__)
BUILTIN = ("hub.engines", "evaluators", "tasks")
GROUP = "evalhub.plugins"
_loaded = False


def load_plugins() -> None:
    """Import every plugin package once (the registries call this before their first lookup)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN:
        importlib.import_module(name)
    for point in entry_points(group=GROUP):
        try:
            point.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not break the built-ins
            log.warning("evalhub plugin %s (%s) failed to load: %s", point.name, point.value, exc)


def register_model_type(folder: Any) -> None:
    """Before ``Auto*.from_pretrained(folder)``: when the folder's ``config.json`` names a model type a
    plugin defines (``hub.registries.MODEL_TYPES``, e.g. text-classification's pruned BERT), import and
    register it. Nothing is read from the folder but that one JSON key; no code in a store runs."""
    import json
    from pathlib import Path

    from hub.registries import MODEL_TYPES

    try:
        model_type = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError, AttributeError):
        return   # the loader reports a missing or damaged config in its own words
    if isinstance(model_type, str) and model_type in MODEL_TYPES:
        MODEL_TYPES.get(model_type)()
