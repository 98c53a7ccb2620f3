"""A BERT classifier with whole attention heads and FFN neurons removed, loadable by the Auto classes.

transformers 5 dropped what made this a config option in 4.x: ``PreTrainedModel.prune_heads``,
``config.pruned_heads`` and ``head_mask`` are gone, and ``BertSelfAttention`` derives its head size
as ``hidden_size / num_attention_heads``, so a plain ``BertConfig`` cannot describe a layer with
fewer heads of the same size, let alone a different FFN width per layer. This module adds the
smallest architecture that can: :class:`PrunedBertConfig` (model type ``evalhub-pruned-bert``) is a
``BertConfig`` plus

- ``pruned_heads``: ``{layer: [head, ...]}`` in the original head numbering, as in transformers 4;
- ``intermediate_sizes``: the FFN width of each layer.

:class:`PrunedBertForSequenceClassification` builds the full BERT and then shrinks each layer's
linear layers to those shapes (no weights are touched: ``from_pretrained`` loads the smaller
tensors into them), so ``save_pretrained`` / ``AutoModelForSequenceClassification.from_pretrained``
round-trip. BERT's own forward already reads the head count from the tensors
(``view(..., -1, head_size)``), so the modules are BERT's own, only narrower.

The classes are registered with ``AutoConfig`` and ``AutoModelForSequenceClassification`` when this
module is imported: the text-classification predictor and the pruner import it, and core loaders
(the torch engine, ``evalhub pull``) find it by model type through ``hub.registries.MODEL_TYPES``.
Outside evalhub, ``import tasks.text_classification.pruned_bert`` before loading (a store never
runs remote code, so there is no ``auto_map``).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertForSequenceClassification

MODEL_TYPE = "evalhub-pruned-bert"


class PrunedBertConfig(BertConfig):
    model_type = MODEL_TYPE

    def __init__(self, pruned_heads: dict | None = None, intermediate_sizes: list[int] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # JSON keys are strings: back to layer numbers, heads sorted
        self.pruned_heads = {int(layer): sorted(int(h) for h in heads) for layer, heads in (pruned_heads or {}).items()}
        self.intermediate_sizes = [int(n) for n in intermediate_sizes] if intermediate_sizes else \
            [self.intermediate_size] * self.num_hidden_layers

    def kept_heads(self, layer: int) -> list[int]:
        """The original numbers of the heads layer ``layer`` still has."""
        gone = set(self.pruned_heads.get(layer, ()))
        return [h for h in range(self.num_attention_heads) if h not in gone]


class PrunedBertForSequenceClassification(BertForSequenceClassification):
    config_class = PrunedBertConfig

    def __init__(self, config: PrunedBertConfig) -> None:
        super().__init__(config)
        head_size = config.hidden_size // config.num_attention_heads
        for index, layer in enumerate(self.bert.encoder.layer):
            resize_layer(layer, len(config.kept_heads(index)), head_size, config.intermediate_sizes[index])


def _linear(old: torch.nn.Linear, in_features: int, out_features: int) -> torch.nn.Linear:
    """A linear layer of the new shape on ``old``'s device and dtype (its values are set later)."""
    return torch.nn.Linear(in_features, out_features, bias=old.bias is not None,
                           device=old.weight.device, dtype=old.weight.dtype)


def resize_layer(layer: Any, heads: int, head_size: int, intermediate: int) -> None:
    """Give a ``BertLayer`` ``heads`` heads and an FFN ``intermediate`` wide (new, uninitialised weights)."""
    attention, hidden = layer.attention.self, layer.attention.output.dense.out_features
    width = heads * head_size
    for name in ("query", "key", "value"):
        setattr(attention, name, _linear(getattr(attention, name), hidden, width))
    attention.num_attention_heads, attention.all_head_size = heads, width
    layer.attention.output.dense = _linear(layer.attention.output.dense, width, hidden)
    layer.intermediate.dense = _linear(layer.intermediate.dense, hidden, intermediate)
    layer.output.dense = _linear(layer.output.dense, intermediate, hidden)


def register() -> None:
    """Register the classes with the Auto classes (done on import; the ``MODEL_TYPES`` entry point)."""
    AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(PrunedBertConfig, PrunedBertForSequenceClassification, exist_ok=True)


register()
