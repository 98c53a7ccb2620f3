"""What a text-generation run would fail on, found before it starts.

``evalhub validate`` and ``evalhub train`` call :func:`check_run`: the trackers are
installed; the model is a causal LM whose config can be read, ships no code of its own and
has positions for ``model.max_length`` (the ``smollm2`` alias: the package's GGUF is there
and of an architecture transformers converts; nothing is converted here); the PEFT options
are ones peft accepts for this architecture (applied to a skeleton built on the meta device,
so target modules that match nothing are found without loading a weight); and the data
reads into the splits the run needs, the evaluation split among them.
"""

from __future__ import annotations

from typing import Any

from hub.errors import UserError, first_line, quote


def check_run(cfg: Any) -> Any:
    """UserError for anything in ``cfg`` the run would stop on; returns the data as it would load."""
    from hub.training import check_trackers
    from tasks.text_generation.data import load_chat_data

    check_trackers(list(cfg.tracking.report_to))
    config = model_config(cfg.model)
    _check_peft(cfg, config)
    data = load_chat_data(cfg.data)
    if not data.splits.get("validation"):
        raise UserError(f"data: no validation split in {quote(cfg.data.source)} (training evaluates on it); "
                        "set data.validation_fraction above 0")
    if not data.splits.get(cfg.eval.split):
        raise UserError(f"eval.split: {quote(cfg.data.source)} has no {quote(cfg.eval.split)} split to score")
    return data


def model_config(model: Any) -> Any:
    """The transformers config of the run's ``model`` section, checked for the task (UserError
    naming ``model.name`` otherwise). For the alias, a one-layer config of the GGUF's architecture:
    enough for the PEFT check, which looks at module names only."""
    from transformers import AutoConfig

    from tasks.text_generation.model import (ALIAS, check_causal_lm, package_gguf_architecture, read_config,
                                             resolve_causal_lm)

    try:
        if model.name == ALIAS:
            return AutoConfig.for_model(package_gguf_architecture(), num_hidden_layers=1)
        source = resolve_causal_lm(model.name, cache_root=None, revision=model.revision)
        raw = read_config(source, revision=model.revision)
        check_causal_lm({**raw, "_name_or_path": model.name})
    except UserError as exc:
        raise UserError(f"model.name: {exc}") from None
    positions = raw.get("max_position_embeddings")
    if positions and model.max_length > positions:
        raise UserError(f"model.max_length is {model.max_length}, but {quote(model.name)} has only {positions} "
                        f"positions; set model.max_length to {positions} or less")
    return AutoConfig.from_pretrained(source, revision=model.revision)


def _check_peft(cfg: Any, config: Any) -> None:
    """Apply the PEFT method to a weightless skeleton of the model: peft raises what training would."""
    if cfg.peft.method == "none":
        return
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    from hub.peft_methods import apply_peft

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        try:
            apply_peft(model, cfg.peft, total_steps=100, task_type="CAUSAL_LM")
        except (ValueError, TypeError, RuntimeError, KeyError, AttributeError) as exc:
            raise UserError(f"peft.options: peft rejects them for this {config.model_type} model "
                            f"({first_line(exc, 240)}); fix peft.options (see `evalhub validate`)") from None
