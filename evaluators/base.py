"""The evaluator contract.

An evaluator takes a predictor and an evaluation split (the task's inputs and references:
texts and label ids for classification, prompts and reference responses for generation;
``labels`` names the classes, empty for a task without them) and returns aggregate scores
(each a :class:`~hub.results.MetricResult` with ``higher_is_better``), and
per-example rows: ``predictions`` (text, label, prediction, probabilities; the task
metrics fill them) and free-form ``records`` (flips, attributions, flagged texts…) that
the store keeps as JSON under the evaluator's name. Suites name evaluators in YAML
(``evaluators/suites/*.yaml``, or any YAML file a ``--suite`` path names), each optionally
with options: ``evaluators: [classification, {robustness: {severity: 0.3}}]``. An
evaluator declares its options as a dataclass in its ``options`` attribute (None: it takes
none but ``bootstrap``), so a suite with an unknown evaluator or option fails when it is
loaded, before any model runs.

An evaluator that needs gradients (``needs_gradients = True``) gets the variant's torch
model through ``context.torch_predictor()`` even when the suite runs on an engine; the
runner says so in its log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from hub.results import EvalOutput  # noqa: F401 - re-exported
from hub.suites import Suite, available_suites, check_options, load_suite, suite_path  # noqa: F401 - re-exported


@dataclass
class EvalContext:
    """What an evaluator may need beyond the predictor: the variant, its torch twin, a log."""

    store: Any
    variant: Any
    engine: str | None
    log: Callable[[str], None] = print
    _torch: Any = None

    def torch_predictor(self) -> Any:
        """The variant's own torch model (for gradients), loaded once."""
        if self._torch is None:
            from hub.registries import TASKS

            self._torch = TASKS.get(self.variant.task).load_predictor(self.store, self.variant)
        return self._torch


class Evaluator(Protocol):
    name: str
    needs_gradients: bool
    options: type | None     # dataclass of the options a suite may set (None: only bootstrap)

    def evaluate(self, predictor: Any, texts: list[Any], references: list[Any], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput: ...
