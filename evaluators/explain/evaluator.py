"""The `explain` evaluator: word attributions, their faithfulness and their sanity, in one call.

Methods (the attributions come from captum, see :mod:`.gradients` and :mod:`.perturbation`):
``ig`` and ``grad_x_input`` need the torch model; ``occlusion`` (leave-one-out) and
``kernel_shap`` only call ``predict_proba``, so they run on any engine. The scores are
hand-written (:mod:`.faithfulness`, :mod:`.sanity`) and always use the predictor the suite
runs on, so an engine run scores the explanations against what is served.

``needs_gradients`` is False on purpose: the runner then hands over the engine, the
model-agnostic methods run on it, and the gradient methods fetch the variant's torch model
through ``context.torch_predictor()`` themselves; without one (a bare engine predictor and
no context) they are dropped with a log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from evaluators.base import EvalContext
from hub.results import EvalOutput
from hub.results import MetricResult, bootstrap_mean_ci
from evaluators.explain.faithfulness import DEFAULT_FRACTIONS, comprehensiveness_sufficiency, tau_against
from evaluators.explain.gradients import GRADIENT_METHODS, PRECISIONS, gradient_attributions
from evaluators.explain.perturbation import kernel_shap, leave_one_out
from evaluators.explain.sanity import completeness_gap, randomization_rho, randomized_copy
from evaluators.explain.words import fit_words
from hub.config import from_dict, opt
from hub.errors import UserError, did_you_mean

logger = logging.getLogger(__name__)

METHODS = ("ig", "grad_x_input", "occlusion", "kernel_shap")
HIGHER_IS_BETTER = {"comprehensiveness": True, "sufficiency": False, "tau_loo": True,
                    "ig_completeness_gap": False, "randomization_rho": False}


@dataclass
class ExplainOptions:
    methods: list[str] = opt(list(METHODS), "attribution methods: ig, grad_x_input (torch model), "
                                            "occlusion, kernel_shap (any engine)")
    max_examples: int = opt(50, "examples explained: a sample of the split seeded by the run seed (0: all)")
    n_steps: int = opt(32, "integrated-gradients steps (Gauss-Legendre); raise it if ig_completeness_gap is large")
    shap_samples: int = opt(100, "coalitions KernelSHAP evaluates per example (one predict call each)")
    internal_batch_size: int = opt(16, "rows per forward pass when integrated gradients runs its steps "
                                   "(on 2 CPU cores 16 rows of 128 tokens ran 7% faster than 64)")
    precision: str = opt("fp32", "fp32, or bf16: the gradient methods run under torch.autocast in bfloat16 "
                         "(1.25x faster on 2 AVX-512 BF16 cores, word attributions within ~1% of fp32's)")
    fractions: list[float] = opt(list(DEFAULT_FRACTIONS), "fractions of top words removed/kept, averaged (AOPC)")
    randomization: bool = opt(True, "run the model-randomization sanity test for the gradient methods")

    def __post_init__(self) -> None:
        check_explain_options(self, METHODS)
        if self.n_steps < 1 or self.shap_samples < 2 or self.internal_batch_size < 1:
            raise ValueError("n_steps and internal_batch_size must be >= 1, shap_samples >= 2")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


def check_explain_options(opts: Any, methods: tuple[str, ...]) -> None:
    """The checks every explanation evaluator's options share: methods, max_examples, fractions."""
    for method in opts.methods:
        if method not in methods:
            raise ValueError(f"unknown method '{method}'{did_you_mean(method, methods)}; "
                             f"available: {', '.join(methods)}")
    if not opts.methods:
        raise ValueError(f"methods is empty; choose from {', '.join(methods)}")
    if opts.max_examples < 0:
        raise ValueError(f"max_examples must be >= 0 (0: all), got {opts.max_examples}")
    if not opts.fractions or not all(0.0 < f <= 1.0 for f in opts.fractions):
        raise ValueError(f"fractions must be a non-empty list of values in (0, 1], got {opts.fractions}")


class ExplainEvaluator:
    name = "explain"
    needs_gradients = False   # gradient methods get the torch model themselves (module docstring)
    options = ExplainOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, bootstrap: int = 1000,
                 **options: Any) -> EvalOutput:
        opts = from_dict(ExplainOptions, options, "explain options")
        log = context.log if context is not None else logger.info
        idx, words_list = _sample(predictor, texts, opts.max_examples, seed)
        base = np.asarray(predictor.predict_proba([" ".join(w) for w in words_list]), dtype=np.float64)
        targets = base.argmax(axis=1) if len(words_list) else np.zeros(0, dtype=np.int64)
        twin = _gradient_predictor(predictor, context, opts.methods, log)
        methods = [m for m in opts.methods if m not in GRADIENT_METHODS or twin is not None]
        attrs, scores = {}, {}
        for method in methods:
            start = time.perf_counter()
            attrs[method], extra = _attribute(method, predictor, twin, words_list, targets, base, opts, seed)
            scores.update(extra)
            log(f"explain: {method} on {len(words_list)} examples in {time.perf_counter() - start:.1f}s")
        scores.update(_faithfulness(predictor, words_list, targets, base, attrs, opts))
        if opts.randomization and twin is not None:
            scores.update(_randomization(twin, words_list, targets, attrs, opts, seed, log))
        metrics = [m for name, values in scores.items() if (m := mean_metric(name, values, bootstrap, seed))]
        records = _records(idx, words_list, references, labels, targets, base, attrs, scores)
        return EvalOutput(metrics=metrics, records=records)


def _sample(predictor: Any, texts: list[str], max_examples: int, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """Seeded sample of example indices with their words (cut to the model window); empty texts dropped."""
    idx = np.arange(len(texts))
    if 0 < max_examples < len(texts):
        idx = np.sort(np.random.default_rng(seed).choice(len(texts), max_examples, replace=False))
    words_list = fit_words([texts[i] for i in idx], getattr(predictor, "tokenizer", None),
                           getattr(predictor, "max_length", None))
    keep = [i for i, words in enumerate(words_list) if words]
    return idx[keep], [words_list[i] for i in keep]


def _gradient_predictor(predictor: Any, context: EvalContext | None, methods: list[str],
                        log: Callable[[str], None]) -> Any:
    """The torch predictor gradient methods run on, or None (and a log line) when there is none."""
    wanted = [m for m in methods if m in GRADIENT_METHODS]
    if not wanted:
        return None
    if getattr(predictor, "model", None) is not None:
        return predictor
    reason = "no torch model is available"
    if context is not None:
        try:
            twin = context.torch_predictor()
            log(f"explain: {', '.join(wanted)} run on the torch model of {context.variant.id}; "
                f"the scores use {getattr(predictor, 'engine', 'the engine')}")
            return twin
        except UserError as exc:
            reason = str(exc)
    log(f"explain: dropping {', '.join(wanted)} on {getattr(predictor, 'engine', 'this predictor')} "
        f"({reason}); occlusion and kernel_shap need only predictions")
    return None


def _attribute(method: str, predictor: Any, twin: Any, words_list: list[list[str]], targets: np.ndarray,
               base: np.ndarray, opts: ExplainOptions, seed: int) -> tuple[list[np.ndarray], dict]:
    """Word attributions of one method, plus any per-example scores it yields on the way."""
    if method in GRADIENT_METHODS:
        attrs, terms = gradient_attributions(twin.model, twin.tokenizer, twin.max_length, words_list, targets,
                                             method, n_steps=opts.n_steps,
                                             internal_batch_size=opts.internal_batch_size,
                                             precision=opts.precision)
        return attrs, ({"ig_completeness_gap": completeness_gap(terms)} if terms is not None else {})
    if method == "occlusion":
        return leave_one_out(predictor, words_list, targets, base), {}
    return kernel_shap(predictor, words_list, targets, base, n_samples=opts.shap_samples, seed=seed), {}


def _faithfulness(predictor: Any, words_list: list[list[str]], targets: np.ndarray, base: np.ndarray,
                  attrs: dict[str, list[np.ndarray]], opts: ExplainOptions) -> dict[str, np.ndarray]:
    """Per-example comprehensiveness, sufficiency and Kendall tau against leave-one-out."""
    scores = {}
    for method, method_attrs in attrs.items():
        comp, suff = comprehensiveness_sufficiency(predictor, words_list, method_attrs, targets, base,
                                                   opts.fractions)
        scores[f"comprehensiveness/{method}"], scores[f"sufficiency/{method}"] = comp, suff
    others = [m for m in attrs if m != "occlusion"]
    if others:
        loo = attrs.get("occlusion") or leave_one_out(predictor, words_list, targets, base)
        for method in others:
            scores[f"tau_loo/{method}"] = tau_against(loo, attrs[method])
    return scores


def _randomization(twin: Any, words_list: list[list[str]], targets: np.ndarray,
                   attrs: dict[str, list[np.ndarray]], opts: ExplainOptions, seed: int,
                   log: Callable[[str], None]) -> dict[str, np.ndarray]:
    """Per-example Spearman rho between each gradient method on the model and on a randomised copy."""
    methods = [m for m in attrs if m in GRADIENT_METHODS]
    if not methods:
        return {}
    start = time.perf_counter()
    model = randomized_copy(twin.model, seed)
    scores = {}
    for method in methods:
        random_attrs, _ = gradient_attributions(model, twin.tokenizer, twin.max_length, words_list, targets,
                                                method, n_steps=opts.n_steps,
                                                internal_batch_size=opts.internal_batch_size,
                                                precision=opts.precision)
        scores[f"randomization_rho/{method}"] = randomization_rho(attrs[method], random_attrs)
    log(f"explain: model-randomization test in {time.perf_counter() - start:.1f}s")
    return scores


def mean_metric(name: str, values: np.ndarray, bootstrap: int, seed: int,
                higher_is_better: dict[str, bool] = HIGHER_IS_BETTER) -> MetricResult | None:
    """Mean over the examples where the score is defined, with a bootstrap CI; None when none is.
    ``higher_is_better`` is looked up by the name's part before any ``/``."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    low, high = (bootstrap_mean_ci(finite, bootstrap, seed, 0.95) if bootstrap > 0 and len(finite) > 1
                 else (None, None))
    return MetricResult(name, float(finite.mean()), low, high, higher_is_better[name.split("/")[0]])


def _records(idx: np.ndarray, words_list: list[list[str]], references: list[int], labels: list[str],
             targets: np.ndarray, base: np.ndarray, attrs: dict[str, list[np.ndarray]],
             scores: dict[str, np.ndarray]) -> list[dict]:
    """One JSON row per explained example: its words, each method's word attributions, its scores."""
    def num(value: float) -> float | None:
        return round(float(value), 6) if np.isfinite(value) else None

    return [{"idx": int(i), "text": " ".join(words), "label": labels[references[i]],
             "prediction": labels[int(targets[row])], "probability": num(base[row, targets[row]]),
             "words": list(words),
             "attributions": {m: [num(v) for v in a[row]] for m, a in attrs.items()},
             "scores": {name: num(values[row]) for name, values in scores.items()}}
            for row, (i, words) in enumerate(zip(idx, words_list))]
