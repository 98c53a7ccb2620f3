"""Safety scorecard: counterfactual fairness, toxicity, PII, refusal, and the demo guard.

Modules: ``counterfactuals`` (identity-term swaps over ``identity_terms.yaml``), ``fairness``
(flip rate and |Δp|), ``toxicity`` (alt-profanity-check), ``pii`` (e-mail, phone, card, IBAN
detection), ``refusal`` (refusal detector and the prompt sets in ``prompts/``), ``guard``
(what demos call) and ``evaluator`` (the four registered evaluators).

Demos call ``from evaluators.safety.guard import guard``. The package itself only exports the
evaluator classes, lazily (PEP 562), so that importing the guard does not import the scorecard
machinery (``evaluate``); it does not re-export ``guard`` because a function of that name would
shadow the ``evaluators.safety.guard`` module.
"""

from __future__ import annotations

from typing import Any

# registry name -> "module:attr" target, as registered in hub/registries.py
EVALUATOR_TARGETS = {
    "fairness": "evaluators.safety:FairnessEvaluator",
    "toxicity": "evaluators.safety:ToxicityEvaluator",
    "pii": "evaluators.safety:PiiEvaluator",
    "refusal": "evaluators.safety:RefusalEvaluator",
}
_LAZY = {target.split(":")[1] for target in EVALUATOR_TARGETS.values()}

__all__ = ["EVALUATOR_TARGETS", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from evaluators.safety import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
