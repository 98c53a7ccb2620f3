"""The evaluator contract.

An evaluator takes a predictor and an evaluation split and returns aggregate scores
(each a :class:`~evaluators.classification.MetricResult` with ``higher_is_better``) and
per-example records. Suites name evaluators in YAML (``evaluators/suites/*.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hub.config import from_dict, opt, read_yaml
from hub.errors import UserError
from hub.registries import EVALUATORS

SUITES_DIR = Path(__file__).parent / "suites"


@dataclass
class EvalOutput:
    metrics: list[Any]
    records: list[dict] = field(default_factory=list)


class Evaluator(Protocol):
    name: str
    needs_gradients: bool

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, **options: Any) -> EvalOutput: ...


@dataclass
class Suite:
    name: str = opt(None, "suite name")
    description: str = opt("", "what the suite measures")
    evaluators: list[str] = opt([], "registered evaluator names, run in order")


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def load_suite(name: str) -> Suite:
    from hub.errors import did_you_mean

    path = SUITES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown suite '{name}'{did_you_mean(name, available_suites())}; "
                        f"available: {', '.join(available_suites())}")
    suite = from_dict(Suite, read_yaml(path), str(path))
    for evaluator in suite.evaluators:
        EVALUATORS.get(evaluator)  # unknown names fail before anything runs
    return suite
