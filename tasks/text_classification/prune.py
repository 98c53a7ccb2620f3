"""Structured pruning of BERT classifiers: whole attention heads and FFN neurons, physically removed.

Importance, computed on batches of the variant's training split:

- ``taylor`` (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): every head's output
  and every FFN neuron is multiplied by a gate fixed at 1; the importance of a gate is the absolute
  value of the loss gradient with respect to it, summed over batches (per batch ``|sum_x dL/dg|``,
  i.e. ``|sum grad * mask|`` with the mask at 1). Head scores are divided by their layer's L2 norm
  (the paper's normalisation), so heads of all layers are ranked together.
- ``magnitude``: a head's weight norm (its query, key and value rows and its columns of the
  attention output), a neuron's ``|row of intermediate.dense| * |column of output.dense|``.

Heads go by one global ranking (``head_scope="global"``), never the last head of a layer, or by
the same share in every layer (``"layer"``: ``round(heads * count)`` lowest of each layer, at least
one kept). Global ranking keeps the heads that matter wherever they are, but leaves layers uneven
(MiniLM at 0.4: 10, 10, 4, 3, 7, 9 heads). Even layers ran at least as fast in the int8 engines
(OpenVINO, seq 128, against the unpruned engine, b1 / b32, machine loaded): BERT-base geometry at
0.4/0.4, 1.74x / 1.41x even against 1.72x / 1.36x global; MiniLM geometry, 42 of 72 heads, 1.72x
against 1.37x at b1 in a noisier run. Neurons go by the same share in every layer
(``round(ffn * width)`` lowest of that layer), so layers stay balanced for the engines;
:class:`~tasks.text_classification.pruned_bert.PrunedBertConfig` could hold any per-layer width.

The surgery is written here, not taken from a library: transformers 5 removed ``prune_heads`` (and
``head_mask``), and ``torch-pruning`` 1.6 (it installs here without touching torch) prunes module
graphs in memory but saves the result with ``torch.save`` (a pickle, which the store refuses) and
would leave a model that no transformers config describes. Slicing four linear layers per block
and writing a config that says what was removed is short and keeps ``save_pretrained`` /
``from_pretrained`` working.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Literal

import torch

from hub.errors import UserError
from tasks.text_classification.pruned_bert import MODEL_TYPE, PrunedBertConfig, PrunedBertForSequenceClassification

SUPPORTED = {"bert": "BERT (BertForSequenceClassification: BERT, MiniLM, ...)",
             MODEL_TYPE: "a BERT already pruned by evalhub"}
METHODS = ("taylor", "magnitude")
HEAD_SCOPES = ("global", "layer")


@dataclass
class PruneSettings:
    heads: float = 0.3                  # share of all attention heads removed
    ffn: float = 0.3                    # share of each layer's FFN neurons removed
    method: Literal["taylor", "magnitude"] = "taylor"
    importance_batches: int = 8         # training batches the Taylor scores sum over
    head_scope: Literal["global", "layer"] = "global"   # rank heads across layers, or remove the share from each

    def __post_init__(self) -> None:
        for name in ("heads", "ffn"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise UserError(f"--{name} {value!r}: the share to remove must be in [0, 1) (0.3 removes 30%)")
        if self.method not in METHODS:
            raise UserError(f"--method {self.method!r}: expected one of {', '.join(METHODS)}")
        if self.head_scope not in HEAD_SCOPES:
            raise UserError(f"--head-scope {self.head_scope!r}: expected one of {', '.join(HEAD_SCOPES)}")
        if self.importance_batches < 1:
            raise UserError(f"importance_batches must be at least 1, got {self.importance_batches}")


@dataclass
class PrunePlan:
    """What goes, in the model's current numbering: heads and neurons removed per layer."""

    heads: dict[int, list[int]] = field(default_factory=dict)
    neurons: dict[int, list[int]] = field(default_factory=dict)


def check_architecture(config: Any, where: str) -> None:
    """UserError unless ``config`` is a BERT classifier the pruner knows."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise UserError(f"{where}: cannot prune a {model_type!r} model; supported architectures: "
                        + "; ".join(f"{k} ({v})" for k, v in SUPPORTED.items()))


def layers(model: Any) -> list[Any]:
    return list(model.bert.encoder.layer)


def head_size(model: Any) -> int:
    return model.config.hidden_size // model.config.num_attention_heads


def heads_of(layer: Any, size: int) -> int:
    return layer.attention.self.query.out_features // size


def count_parameters(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


# -- importance ---------------------------------------------------------------------------------
def magnitude_importance(model: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(per-layer head scores, per-layer neuron scores) from weight norms."""
    size, heads, neurons = head_size(model), [], []
    for layer in layers(model):
        attn = layer.attention.self
        n = heads_of(layer, size)
        qkv = torch.cat([getattr(attn, p).weight.detach() for p in ("query", "key", "value")], dim=1)  # [n*size, 3*hidden]
        out = layer.attention.output.dense.weight.detach().T                                        # [n*size, hidden]
        per_head = torch.cat([qkv, out], dim=1).reshape(n, size, -1)
        heads.append(per_head.pow(2).sum(dim=(1, 2)).sqrt())
        neurons.append(layer.intermediate.dense.weight.detach().norm(dim=1)
                       * layer.output.dense.weight.detach().norm(dim=0))
    return heads, neurons


def taylor_importance(model: Any, batches: Iterable[dict]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(per-layer head scores, per-layer neuron scores): |dL/dgate| summed over ``batches``."""
    size = head_size(model)
    head_gates = [torch.ones(heads_of(layer, size), requires_grad=True) for layer in layers(model)]
    neuron_gates = [torch.ones(layer.intermediate.dense.out_features, requires_grad=True) for layer in layers(model)]
    head_scores = [torch.zeros_like(g) for g in head_gates]
    neuron_scores = [torch.zeros_like(g) for g in neuron_gates]
    handles = []
    for layer, hg, ng in zip(layers(model), head_gates, neuron_gates):
        handles.append(layer.attention.self.register_forward_hook(_gate_heads(hg, size)))
        handles.append(layer.intermediate.register_forward_hook(lambda _m, _i, out, g=ng: out * g))
    was_training = model.training
    model.eval()   # dropout off: the scores describe the model as it predicts
    try:
        for batch in batches:
            model.zero_grad(set_to_none=True)
            loss = model(**batch).loss
            grads = torch.autograd.grad(loss, head_gates + neuron_gates)
            for score, grad in zip(head_scores + neuron_scores, grads):
                score += grad.abs()
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return head_scores, neuron_scores


def _gate_heads(gate: torch.Tensor, size: int) -> Any:
    def hook(_module: Any, _inputs: Any, output: Any) -> Any:
        context, *rest = output
        return (context * gate.repeat_interleave(size).to(context.dtype), *rest)
    return hook


# -- what goes ------------------------------------------------------------------------------------
def heads_to_remove(heads_per_layer: list[int], share: float) -> int:
    """How many heads ``share`` removes; UserError when that would leave a layer without one."""
    total = sum(heads_per_layer)
    n_remove = int(round(share * total))
    removable = total - len(heads_per_layer)
    if n_remove > removable:
        raise UserError(f"--heads {share:g} would remove {n_remove} of the {total} attention heads, leaving a layer "
                        f"with none; every layer keeps at least one, so at most {removable} can go "
                        f"(--heads {max(removable - 0.5, 0) / total:.2f} or less)")
    return n_remove


def config_heads(config: Any) -> list[int]:
    """Heads per layer that a (possibly already pruned) BERT config describes."""
    gone = getattr(config, "pruned_heads", None) or {}
    return [config.num_attention_heads - len(gone.get(i, ())) for i in range(config.num_hidden_layers)]


def plan_pruning(head_scores: list[torch.Tensor], neuron_scores: list[torch.Tensor], settings: PruneSettings
                 ) -> PrunePlan:
    """The lowest-scoring heads (globally, layer-normalised, or per layer; one kept per layer) and
    neurons (per layer)."""
    n_remove = heads_to_remove([len(s) for s in head_scores], settings.heads)
    plan = PrunePlan()
    if settings.head_scope == "layer":
        plan.heads = _lowest_per_layer(head_scores, settings.heads)
    else:
        normalised = [scores / (scores.norm() + 1e-12) for scores in head_scores]
        ranked = sorted((float(s), layer, head) for layer, scores in enumerate(normalised)
                        for head, s in enumerate(scores))
        left = [len(s) for s in head_scores]
        for _, layer, head in ranked:
            if sum(len(v) for v in plan.heads.values()) == n_remove:
                break
            if left[layer] > 1:
                plan.heads.setdefault(layer, []).append(head)
                left[layer] -= 1
    plan.neurons = _lowest_per_layer(neuron_scores, settings.ffn)
    plan.heads = {layer: sorted(heads) for layer, heads in plan.heads.items()}
    return plan


def _lowest_per_layer(scores_per_layer: list[torch.Tensor], share: float) -> dict[int, list[int]]:
    """{layer: the ``round(share * count)`` lowest-scoring indices of that layer}, one always kept."""
    out = {}
    for layer, scores in enumerate(scores_per_layer):
        k = min(int(round(share * len(scores))), len(scores) - 1)
        if k:
            out[layer] = sorted(torch.argsort(scores, stable=True)[:k].tolist())
    return out


# -- surgery ------------------------------------------------------------------------------------
def apply_plan(model: Any, plan: PrunePlan) -> PrunedBertForSequenceClassification:
    """A new, smaller model without ``plan``'s heads and neurons; ``model`` is left as it was."""
    old = model.config
    size = head_size(model)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pruned_heads = dict(getattr(old, "pruned_heads", {}) or {})
    widths = []
    for index, layer in enumerate(layers(model)):
        original = old.kept_heads(index) if old.model_type == MODEL_TYPE else list(range(old.num_attention_heads))
        gone = set(plan.heads.get(index, ()))
        keep_heads = [h for h in range(heads_of(layer, size)) if h not in gone]
        pruned_heads[index] = sorted(set(pruned_heads.get(index, ())) | {original[h] for h in gone})
        rows = torch.cat([torch.arange(h * size, (h + 1) * size) for h in keep_heads])
        width = layer.intermediate.dense.out_features
        keep = torch.tensor([i for i in range(width) if i not in set(plan.neurons.get(index, ()))])
        widths.append(len(keep))
        _slice(state, f"bert.encoder.layer.{index}", rows, keep)
    values = {k: v for k, v in old.to_dict().items() if k not in ("model_type", "architectures", "transformers_version")}
    values.update(pruned_heads={k: v for k, v in pruned_heads.items() if v}, intermediate_sizes=widths)
    config = PrunedBertConfig(**values)
    config.architectures = [PrunedBertForSequenceClassification.__name__]
    pruned = PrunedBertForSequenceClassification(config)
    pruned.load_state_dict(state, strict=True)
    return pruned.train(model.training)


def _slice(state: dict, prefix: str, rows: torch.Tensor, neurons: torch.Tensor) -> None:
    for name in ("query", "key", "value"):
        for kind in ("weight", "bias"):
            key = f"{prefix}.attention.self.{name}.{kind}"
            state[key] = state[key][rows].contiguous()
    key = f"{prefix}.attention.output.dense.weight"
    state[key] = state[key][:, rows].contiguous()
    for kind in ("weight", "bias"):
        key = f"{prefix}.intermediate.dense.{kind}"
        state[key] = state[key][neurons].contiguous()
    key = f"{prefix}.output.dense.weight"
    state[key] = state[key][:, neurons].contiguous()


def prune_model(model: Any, settings: PruneSettings, batches: Iterable[dict] = ()) -> tuple[Any, dict]:
    """(the pruned model, its lineage: settings, what went, parameter counts)."""
    check_architecture(model.config, "the model")
    if settings.method == "taylor":
        head_scores, neuron_scores = taylor_importance(model, batches)
    else:
        head_scores, neuron_scores = magnitude_importance(model)
    plan = plan_pruning(head_scores, neuron_scores, settings)
    pruned = apply_plan(model, plan)
    before, after = count_parameters(model), count_parameters(pruned)
    return pruned, {
        "settings": asdict(settings),
        "removed_heads": {str(k): v for k, v in plan.heads.items()},
        "removed_neurons": {str(k): len(v) for k, v in plan.neurons.items()},
        "heads_per_layer": [len(pruned.config.kept_heads(i)) for i in range(pruned.config.num_hidden_layers)],
        "intermediate_sizes": list(pruned.config.intermediate_sizes),
        "parameters": {"before": before, "after": after, "kept": after / before},
    }
