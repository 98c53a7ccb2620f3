"""Evaluators: task metrics, calibration, robustness, safety and explanations, and named suites.

Each evaluator registers itself here, lazily (``"module:attr"``), so that finding one costs
no import of its machinery; the suites in ``suites/`` are registered as a suite folder.
Which evaluators apply to a task is the task's to say (``Task.evaluators``).
"""

from pathlib import Path

from hub.registries import EVALUATORS
from hub.suites import SUITE_DIRS
from evaluators.safety import EVALUATOR_TARGETS as _SAFETY

EVALUATORS.register("classification", "evaluators.task_metrics:ClassificationEvaluator")
EVALUATORS.register("generation", "evaluators.generation:GenerationEvaluator")
for _name, _target in _SAFETY.items():
    EVALUATORS.register(_name, _target)
EVALUATORS.register("robustness", "evaluators.robustness:RobustnessEvaluator")
EVALUATORS.register("explain", "evaluators.explain:ExplainEvaluator")
# the generation scorecards (prompts in, answers scored)
EVALUATORS.register("generation_robustness", "evaluators.robustness.generation:GenerationRobustnessEvaluator")
EVALUATORS.register("generation_fairness", "evaluators.safety.gen_fairness:GenerationFairnessEvaluator")
EVALUATORS.register("generation_explain", "evaluators.explain.generation:GenerationExplainEvaluator")

SUITE_DIRS.append(Path(__file__).parent / "suites")
