"""The project's registries, one instance per kind of plugin.

Entries are registered by the plugins themselves, in their own packages (``tasks/<task>/``,
``evaluators/…``, ``hub/engines/``), lazily ("module:attr") so that ``import hub`` stays cheap:
torch, peft and the engine backends load only when an entry is used. The first lookup in
a registry imports those packages (:func:`hub.plugins.load_plugins`).
"""

from __future__ import annotations

from hub.registry import Registry


def _discover() -> None:
    from hub.plugins import load_plugins

    load_plugins()


TASKS: Registry = Registry("task", _discover)
EVALUATORS: Registry = Registry("evaluator", _discover)
PEFT_METHODS: Registry = Registry("PEFT method")
# backends of tasks whose models are exported as one forward pass over token ids (encoders);
# a task names the backends it supports in its contract (``Task.engines``)
ENGINES: Registry = Registry("engine backend", _discover)
# transformers architectures a plugin defines itself (model_type -> a no-argument callable whose module
# registers them with the Auto classes); see hub.plugins.register_model_type
MODEL_TYPES: Registry = Registry("model type", _discover)
# structured pruning by task name: a callable (store, variant ref, settings..., show_progress) -> new variant id
PRUNERS: Registry = Registry("pruner", _discover)
