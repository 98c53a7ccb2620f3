"""What a text-classification run would fail on, found before it starts.

``evalhub validate`` and ``evalhub train`` call :func:`check_run`: the trackers are
installed, the model's config can be read, it is not a generative LM, ``model.max_length``
fits its position table, the PEFT options are ones peft accepts *for this model* (peft's
own checks run on a skeleton of the model built on the meta device, so ``r: -4`` or target
modules that match nothing are found without loading a weight), and the data reads into
the splits the run needs, the evaluation split among them.
"""

from __future__ import annotations

from typing import Any

from hub.data import LoadedData, load_data
from hub.errors import UserError, first_line, quote, quote_list
from hub.models import resolve_model
from hub.training import TRACKER_MODULES, check_trackers  # noqa: F401 - re-exported


def check_run(cfg: Any) -> LoadedData:
    """UserError for anything in ``cfg`` the run would stop on; returns the data as it would load."""
    check_trackers(list(cfg.tracking.report_to))
    model_config = _model_config(cfg)
    check_architecture(model_config, "model.name", cfg.model.name)
    check_positions(cfg, model_config)
    _check_peft(cfg, model_config)
    data = load_data(cfg.data)
    _check_splits(cfg, data)
    return data


def _model_config(cfg: Any) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(resolve_model(cfg.model.name), revision=cfg.model.revision,
                                          trust_remote_code=cfg.model.trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"model.name: cannot read the config of {quote(cfg.model.name)} ({first_line(exc, 160)}); "
                        "give the embedded 'minilm', a saved model folder, or a Hub id while online") from None


def check_architecture(model_config: Any, where: str, name: str | None = None) -> None:
    """A generative LM (``LlamaForCausalLM``, ``GPT2LMHeadModel``, ``T5ForConditionalGeneration``)
    would get a new classification head and lose what it is for: refused, naming the architecture."""
    from hub.models import generative_architecture

    architecture = generative_architecture(model_config)
    if architecture:
        shown = quote(name) if name else "the model"
        raise UserError(f"{where}: task text-classification needs an encoder or a *ForSequenceClassification "
                        f"model, but {shown} is a {architecture}, a generative language model; use an encoder "
                        f"(e.g. the embedded 'minilm'), or task text-generation for this model")


def check_positions(cfg: Any, model_config: Any) -> None:
    """A max_length past the model's position table fails at the first step; say so before training."""
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions and cfg.model.max_length > positions:
        raise UserError(f"model.max_length is {cfg.model.max_length}, but {quote(cfg.model.name)} has only "
                        f"{positions} positions; set model.max_length to {positions} or less")


def _check_peft(cfg: Any, model_config: Any) -> None:
    """Apply the PEFT method to a weightless skeleton of the model: peft raises what training would."""
    if cfg.peft.method == "none":
        return
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForSequenceClassification

    from hub.peft_methods import apply_peft

    import copy

    skeleton = copy.deepcopy(model_config)
    skeleton.num_labels = 2   # the head's width does not change which modules PEFT wraps
    with init_empty_weights():
        model = AutoModelForSequenceClassification.from_config(
            skeleton, trust_remote_code=cfg.model.trust_remote_code, dtype=torch.float32)
        try:
            apply_peft(model, cfg.peft, total_steps=100)
        except (ValueError, TypeError, RuntimeError, KeyError, AttributeError) as exc:
            raise UserError(f"peft.options: peft rejects them for this {model_config.model_type} model "
                            f"({first_line(exc, 240)}); fix peft.options (see `evalhub validate`)") from None


def _check_splits(cfg: Any, data: LoadedData) -> None:
    splits = list(data.splits)
    if "validation" not in data.splits:
        raise UserError(f"data: no validation split in {quote(cfg.data.source)} (training evaluates on it); "
                        "set data.validation_fraction above 0 or give the data a validation split")
    if cfg.eval.split not in data.splits:
        raise UserError(f"eval.split: {quote(cfg.eval.split)} is not a split of this run's data; "
                        f"splits: {quote_list(splits)}; set eval.split to one of them")
