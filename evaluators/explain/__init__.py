"""Explanation scorecard: word attributions, their faithfulness and sanity checks.

Attributions come from captum (integrated gradients and gradient × input on the embedding
layer, KernelSHAP over word presence); leave-one-out occlusion, the word-level ERASER
faithfulness scores and the sanity checks are written here. Modules:
``words`` (the word unit), ``gradients`` and ``perturbation`` (attributions),
``faithfulness`` and ``sanity`` (scores), ``evaluator`` (the `explain` evaluator).
"""

from evaluators.explain.evaluator import ExplainEvaluator, ExplainOptions

__all__ = ["ExplainEvaluator", "ExplainOptions"]
