"""The task contract: everything the rest of evalhub needs from a task, in one object.

A task plugin is a folder ``tasks/<pipeline_id_with_underscores>/`` whose ``__init__``
registers one :class:`Task` subclass instance in ``hub.registries.TASKS``. The runner, the
engine builder, the store, the CLI, the card writer and the app call these attributes and
methods; none of them imports the task's folder or branches on its name. What a new task
provides:

- identity: ``name`` (the Hugging Face pipeline id), ``pipeline_tag`` and ``card_task``
  (the model card's ``model-index`` task type), ``example_schema`` (what one row of its
  data holds), ``default_model`` and ``default_data`` (the embedded aliases a config gets
  when it names none);
- configuration: ``data_config`` and ``train_config`` (dataclasses for the run config's
  ``data`` and ``train`` sections), ``check(cfg)`` (every problem a run would hit, before
  any work), ``check_model_config(config, where)`` (the model's architecture fits the task);
- training: ``train(cfg, store, ...)`` -> variant id;
- prediction: ``load_predictor(store, record, ...)`` (the reference torch predictor) and
  ``load_eval_splits(record, splits)`` (inputs and references of each split, read once);
- scoring: ``default_suite`` and ``headline_metric``, ``evaluators`` (the generic
  evaluators that apply to it: a suite naming one that does not is refused);
- engines: ``engines`` (its backends, a :class:`~hub.registry.Registry`),
  ``auto_candidates``, ``build_context`` (what backends export), ``reference`` (the eager
  fp32 outputs parity compares against), ``parity`` and ``latency`` (its reports and the
  metrics the build run stores), ``auto_timing`` (the figures ``--backend auto`` ranks by);
- the app: ``demo_tab`` (``"module:attr"`` of its demo widget builder, or None);
- the Hub: ``usage_code(record, repo_id, base)`` (the model card's "how to use" snippet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple


class EvalSplit(NamedTuple):
    """One split of a variant's data as the evaluators see it."""

    inputs: list[Any]        # classification: texts; generation: prompts (text or chat messages)
    references: list[Any]    # classification: label ids; generation: reference responses
    data_hash: str           # content hash of the split
    warnings: list[str]      # what reading it found (a changed split, dropped rows, …)


@dataclass
class Measured:
    """What an engine build measured: the reports kept on the engine record, and the build run's rows."""

    parity: dict
    latency: dict
    metrics: list = field(default_factory=list)       # MetricResult rows of the build run
    predictions: list = field(default_factory=list)   # the task's per-example rows
    records: dict = field(default_factory=dict)       # evaluator name -> free-form rows


class Task:
    """Base of every task plugin; see the module docstring for what a task provides."""

    name: ClassVar[str] = ""
    pipeline_tag: ClassVar[str] = ""
    card_task: ClassVar[str] = ""
    example_schema: ClassVar[dict[str, str]] = {}
    default_model: ClassVar[str] = ""
    default_data: ClassVar[str] = ""
    default_suite: ClassVar[str] = "default"
    headline_metric: ClassVar[str] = ""
    evaluators: ClassVar[frozenset[str]] = frozenset()
    auto_candidates: ClassVar[tuple[tuple[str, str], ...]] = ()
    demo_tab: ClassVar[str | None] = None
    has_labels: ClassVar[bool] = False       # predictions are classes (VariantRecord.labels names them)
    pullable: ClassVar[bool] = False         # `evalhub pull` can bring in models of this task
    auto_parity_keys: ClassVar[tuple[str, ...]] = ()   # parity figures ``--backend auto`` keeps per candidate
    option_keys: ClassVar[frozenset[str]] = frozenset()   # build ``--option`` keys the task itself reads

    # --- configuration -------------------------------------------------------------------
    @property
    def data_config(self) -> type:
        raise NotImplementedError

    @property
    def train_config(self) -> type:
        raise NotImplementedError

    def check(self, cfg: Any) -> Any:
        """UserError for anything the run would fail on; what the run will read (handed to
        ``train`` as ``data=``, so it is read once), or None."""
        return None

    def check_model_config(self, config: Any, where: str) -> None:
        """UserError when a model with this ``transformers`` config cannot do the task."""

    # --- training and prediction ---------------------------------------------------------
    def train(self, cfg: Any, store: Any, **options: Any) -> str:
        raise NotImplementedError

    def load_predictor(self, store: Any, record: Any, **options: Any) -> Any:
        raise NotImplementedError

    def load_eval_splits(self, record: Any, splits: tuple[str, ...]) -> dict[str, EvalSplit]:
        raise NotImplementedError

    # --- engines -------------------------------------------------------------------------
    @property
    def engines(self) -> Any:
        """The registry of the engine backends this task's models can be built with."""
        raise NotImplementedError

    def build_context(self, store: Any, variant: Any, work_dir: Path, options: dict) -> tuple[Any, tuple]:
        """(what backends export from, (split name, EvalSplit)) for one build."""
        raise NotImplementedError

    def reference(self, ctx: Any, split: EvalSplit) -> Any:
        """The eager fp32 torch outputs on the split, computed once per build."""
        raise NotImplementedError

    def parity(self, ctx: Any, reference: Any, predictor: Any, split: EvalSplit, *, quick: bool = False) -> dict:
        """The parity report of a built engine against ``reference``; ``passed`` says whether it holds.
        ``quick``: ``--backend auto`` screening a candidate (the full report follows for the winner)."""
        raise NotImplementedError

    def parity_line(self, parity: dict) -> str:
        """One line for the build log."""
        return f"parity {'passed' if parity.get('passed') else 'FAILED'}"

    def latency(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict:
        raise NotImplementedError

    def auto_timing(self, predictor: Any, ctx: Any, *, budget_s: float) -> dict[str, float]:
        """Figures of one timing round of ``--backend auto`` (ms; lower is better), each round alike."""
        raise NotImplementedError

    def measure(self, ctx: Any, record: Any, predictor: Any, split: EvalSplit, reference: Any, *,
                seed: int, budget_s: float, log: Any = print) -> Measured:
        """Parity, latency and the task metrics of a built engine, as the build run stores them."""
        raise NotImplementedError

    # --- the Hub -------------------------------------------------------------------------
    def usage_code(self, record: Any, repo_id: str, base: str | None) -> str:
        """Python that loads the pushed repo with transformers (peft for an adapter on ``base``)
        and runs it once: the model card's "how to use"."""
        raise NotImplementedError
