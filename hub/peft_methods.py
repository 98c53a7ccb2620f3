"""PEFT methods, registered by name and applied through peft.

Each method names its peft config class, the defaults that suit sequence
classification on BERT-family encoders, whether its adapter can be merged into the base
weights, and which options evalhub fills in itself. Options in the run config are
checked against the peft config's own fields before anything runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hub.errors import UserError, did_you_mean, quote
from hub.registries import PEFT_METHODS


@dataclass(frozen=True)
class PeftMethod:
    name: str
    config_class: str                       # attribute of the peft package
    defaults: dict[str, Any] = field(default_factory=dict)
    mergeable: bool = True                  # merge_and_unload() is exact for this method
    managed: tuple[str, ...] = ()           # options evalhub sets (e.g. AdaLoRA's total_step)

    def config_cls(self):
        import peft

        return getattr(peft, self.config_class)

    def build(self, options: dict[str, Any], *, total_steps: int, task_type: str = "SEQ_CLS") -> Any:
        """The peft config for the task's ``task_type`` (SEQ_CLS keeps the classification head trainable)."""
        kwargs = {**self.defaults, **options, "task_type": task_type}
        if "total_step" in self.managed:
            kwargs.setdefault("total_step", total_steps)
            # AdaLoRA prunes between tinit and total_step - tfinal; keep that window non-empty.
            kwargs.setdefault("tinit", max(1, total_steps // 10))
            kwargs.setdefault("tfinal", max(1, total_steps // 5))
        return self.config_cls()(**kwargs)


def _register(method: PeftMethod) -> None:
    PEFT_METHODS.register(method.name, method)


# LoRA r=8, alpha 16 on peft's default targets for the architecture (query/value for BERT,
# q_proj/v_proj for Llama): reaches 0.93-0.94 on bbc-news with MiniLM (DESIGN.md).
_register(PeftMethod("lora", "LoraConfig", {"r": 8, "lora_alpha": 16, "lora_dropout": 0.1}))
_register(PeftMethod("adalora", "AdaLoraConfig",
                     {"init_r": 12, "target_r": 8, "lora_alpha": 16, "lora_dropout": 0.1}, managed=("total_step",)))
# IA3: peft's own default targets per architecture (key, value, output.dense for BERT).
_register(PeftMethod("ia3", "IA3Config"))
# Prompt tuning prepends virtual tokens; nothing to merge, the adapter is the variant.
_register(PeftMethod("prompt_tuning", "PromptTuningConfig", {"num_virtual_tokens": 20}, mergeable=False))


def validate_peft_section(section: Any, where: str) -> None:
    """Check method name and option keys against the peft config's fields, without torch."""
    if section.method == "none":
        if section.options:
            raise UserError(f"{where}.options: full fine-tuning (method 'none') takes no options")
        return
    try:
        method = PEFT_METHODS.get(section.method)
    except UserError as exc:
        raise UserError(f"{where}.method: {exc} (or 'none' for full fine-tuning)") from None
    valid = [f.name for f in dataclasses.fields(method.config_cls())
             if f.name not in ("task_type", "peft_type", "auto_mapping", "peft_version")]
    for key in section.options:
        if key not in valid:
            raise UserError(f"{where}.options: unknown {method.config_class} option {quote(key)}"
                            f"{did_you_mean(key, valid)}")
    _check_option_types(method, section.options, f"{where}.options")
    try:
        method.build(section.options, total_steps=100)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}.options: {method.config_class} rejects them: {exc}") from None


def _check_option_types(method: PeftMethod, options: dict[str, Any], where: str) -> None:
    """Each option against the type peft's config dataclass declares for it (``r: "eight"`` is
    refused here by name; peft itself would fail later comparing a string with 0)."""
    import typing

    from hub.config import check_type

    try:
        hints = typing.get_type_hints(method.config_cls())
    except Exception:   # annotations this Python cannot resolve: peft's own checks still run
        return
    for key, value in options.items():
        hint = hints.get(key)
        if hint is None or value is None:
            continue
        try:
            check_type(value, hint, f"{where}.{key}")
        except UserError:
            raise
        except Exception:   # an annotation shape the checker does not know: leave it to peft
            continue


def apply_peft(model: Any, section: Any, *, total_steps: int, task_type: str = "SEQ_CLS") -> Any:
    """Wrap ``model`` with the configured PEFT method (or return it for full fine-tuning);
    ``task_type`` is peft's (the task's ``peft_task_type``)."""
    if section.method == "none":
        return model
    from peft import get_peft_model

    method = PEFT_METHODS.get(section.method)
    return get_peft_model(model, method.build(section.options, total_steps=total_steps, task_type=task_type))
