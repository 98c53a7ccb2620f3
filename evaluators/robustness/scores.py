"""The robustness scorecard: pure functions from predictions to ``MetricResult`` s.

Names are plain so the leaderboard shows them next to the task metrics, and
``higher_is_better`` is stated from the model's side (a more robust model ranks higher):

    clean_accuracy        accuracy on the (sampled) clean texts                      higher is better
    acc_<perturbation>    accuracy on the perturbed copy of the sample               higher is better
    flip_<perturbation>   share of the clean-correct examples it changed whose       lower is better
                          prediction changed
    flip_rate             share of clean-correct examples flipped by *any* perturbation  lower is better

A perturbation with nothing to edit in a text (no contraction, no known name or number, no
word WordNet knows) leaves it as it is. ``acc_<perturbation>`` scores the perturbed copy of
the whole sample, so such texts count as they are, while ``flip_<perturbation>`` counts only
the texts the perturbation changed: a flip rate over untouched texts would look robust for
a perturbation that rarely applies. ``flip_<perturbation>`` is left out when it changed none.
    attack_success_rate   share of attacked (clean-correct) examples the attack flipped  lower is better
    words_changed         mean share of words a successful attack had to change      higher is better
    queries_per_attack    mean predictor queries spent per attacked example          higher is better

With the semantic constraints on (``constraints.py``), per checked perturbation and for the
attack (``<p>`` = ``attack``):

    rejected_<p>              share of candidate edits the constraints rejected           (reported)
    edit_similarity_<p>       mean window similarity of the edits made                    (reported)
    unconstrained_flip_<p>    flip_<p> of the same run without the constraints           lower is better
    unconstrained_flip_rate   flip_rate without the constraints                          lower is better
    unconstrained_attack_success_rate   the attack without the constraints               lower is better

``rejected_*`` and ``edit_similarity_*`` describe the edits, not the model; they are stored
with ``higher_is_better`` False and True (fewer rejections, closer edits).

``words_changed`` and ``queries_per_attack`` are attack-cost numbers: the more words and
queries it takes to fool a model, the more robust it is (an attack paper reads them the
other way round, as the attack's cost). ``words_changed`` only exists when some attack
succeeded, and the flip and attack scores only when some clean prediction was right: a
score with nothing to average over is left out rather than stored as 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hub.results import MetricResult


def perturbation_metrics(references: Sequence[int], clean: Sequence[int], perturbed: Mapping[str, Sequence[int]],
                         changed: Mapping[str, Sequence[bool]] | None = None) -> list[MetricResult]:
    """Accuracy per perturbation, and flip rates over the clean-correct examples; ``changed[name]``
    says which texts the perturbation edited (default: all)."""
    refs, clean = np.asarray(references), np.asarray(clean)
    correct = clean == refs
    out = [MetricResult("clean_accuracy", float(correct.mean()))]
    any_flip = np.zeros_like(correct)
    flips = []
    for name, preds in perturbed.items():
        preds = np.asarray(preds)
        out.append(MetricResult(f"acc_{name}", float((preds == refs).mean())))
        edited = np.ones_like(correct) if changed is None else np.asarray(changed[name], dtype=bool)
        flipped = correct & (preds != clean)
        any_flip |= flipped
        if (correct & edited).any():
            flips.append(MetricResult(f"flip_{name}", float(flipped[correct & edited].mean()),
                                      higher_is_better=False))
    if correct.any() and perturbed:
        flips.append(MetricResult("flip_rate", float(any_flip[correct].mean()), higher_is_better=False))
    return out + flips


def attack_metrics(success: Sequence[bool], changed_fraction: Sequence[float],
                   queries: Sequence[int]) -> list[MetricResult]:
    """Scores of the attacked examples: one entry per example in each sequence."""
    success = np.asarray(success, dtype=bool)
    if len(success) == 0:
        return []
    out = [MetricResult("attack_success_rate", float(success.mean()), higher_is_better=False)]
    if success.any():
        out.append(MetricResult("words_changed", float(np.asarray(changed_fraction, dtype=float)[success].mean())))
    out.append(MetricResult("queries_per_attack", float(np.mean(queries))))
    return out


def constraint_metrics(references: Sequence[int], clean: Sequence[int], preds: Mapping[str, Sequence[int]],
                       changed: Mapping[str, Sequence[bool]], free_preds: Mapping[str, Sequence[int]],
                       free_changed: Mapping[str, Sequence[bool]],
                       reports: Mapping[str, Mapping[str, float]]) -> list[MetricResult]:
    """What the constraints cost the checked perturbations: rejections, similarity of the edits
    made, and flip rates without them (``free_*``: the unconstrained predictions and edits)."""
    out = edit_metrics(reports)
    if free_preds:
        free = perturbation_metrics(references, clean, {**preds, **free_preds}, {**changed, **free_changed})
        out += [MetricResult(f"unconstrained_{m.name}", m.value, higher_is_better=False) for m in free
                if m.name == "flip_rate" or m.name.removeprefix("flip_") in free_preds]
    return out


def attack_constraint_metrics(results: Sequence, free_results: Sequence | None,
                              report: Mapping[str, float]) -> list[MetricResult]:
    """Rejections and similarity of the constrained attack's edits, and the success rate of
    the unconstrained attack on the same examples (``free_results``, when it ran)."""
    out = edit_metrics({"attack": report})
    if free_results:
        out.append(MetricResult("unconstrained_attack_success_rate",
                                float(np.mean([r.success for r in free_results])), higher_is_better=False))
    return out


def edit_metrics(reports: Mapping[str, Mapping[str, float]]) -> list[MetricResult]:
    out = []
    for name, report in reports.items():
        if "rejected" in report:
            out.append(MetricResult(f"rejected_{name}", report["rejected"], higher_is_better=False))
        if "similarity" in report:
            out.append(MetricResult(f"edit_similarity_{name}", report["similarity"]))
    return out
