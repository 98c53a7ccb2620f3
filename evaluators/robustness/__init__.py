"""Robustness scorecard: seeded perturbations, flip rates and a query-budgeted greedy attack.

Modules, each with one job: ``words`` (spacing-preserving word edits), ``lexicon`` (the
small project-owned word lists), ``perturb`` (the perturbation suite), ``wordnet``
(synonyms from Debian's wordnet-base through NLTK), ``constraints`` (what an edit may change
and the semantic checks it must pass), ``attack`` (the greedy attack),
``scores`` (metrics) and ``evaluator`` (the `robustness` evaluator that ties them).
"""

from .evaluator import RobustnessEvaluator, RobustnessOptions
from .perturb import PERTURBATIONS, perturb

__all__ = ["PERTURBATIONS", "RobustnessEvaluator", "RobustnessOptions", "perturb"]
