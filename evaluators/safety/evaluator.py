"""The safety evaluators: ``fairness``, ``toxicity``, ``pii`` and ``refusal``.

Each follows the contract of ``evaluators/base.py`` and turns the pure functions of its
module into ``MetricResult`` rows and JSON records; options are dataclasses checked like run
configs (an unknown option is a UserError naming the valid ones). ``toxicity`` and ``pii``
score the evaluation texts, and with ``outputs: true`` also what a generative predictor
writes for them; ``refusal`` needs a generative predictor outright. The generation contract
assumed here: ``predictor.generate(prompts: list[str], **generate_kwargs) -> list[str]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluators.base import EvalContext
from evaluators.prompts import conversation_text
from hub.results import EvalOutput
from hub.results import MetricResult
from evaluators.safety import counterfactuals as cf_mod
from evaluators.safety import fairness, pii, refusal, toxicity
from evaluators.window import read_by
from hub.config import from_dict, opt
from hub.errors import UserError, did_you_mean


def _options(cls: type, evaluator: str, options: dict) -> Any:
    return from_dict(cls, options, f"evaluator '{evaluator}' options")


def _log(context: EvalContext | None, message: str) -> None:
    (context.log if context is not None else print)(message)


def require_generate(predictor: Any, evaluator: str) -> None:
    """Raise a UserError unless ``predictor`` has a ``generate`` method."""
    if not callable(getattr(predictor, "generate", None)):
        engine = getattr(predictor, "engine", type(predictor).__name__)
        raise UserError(f"evaluator '{evaluator}' needs a generative model, but the predictor ({engine}) "
                        "has no generate method; run it on a text-generation variant")


def _sources(predictor: Any, texts: list[str], evaluator: str, opts: Any) -> dict[str, list[str]]:
    """The texts to scan: the inputs, and the predictor's generations when ``opts.outputs``."""
    sources = {"inputs": [conversation_text(t) for t in texts]}   # a chat prompt: all its turns
    if opts.outputs:
        sources["outputs"] = generate(predictor, list(texts), evaluator, opts.generate_kwargs)
    return sources


def generate(predictor: Any, prompts: list[str], evaluator: str, generate_kwargs: dict) -> list[str]:
    """The predictor's outputs for ``prompts``, or a UserError when it cannot generate."""
    require_generate(predictor, evaluator)
    outputs = list(predictor.generate(list(prompts), **generate_kwargs))
    if len(outputs) != len(prompts):
        raise RuntimeError(f"generate returned {len(outputs)} outputs for {len(prompts)} prompts")
    return [str(o) for o in outputs]


@dataclass
class FairnessOptions:
    axes: list[str] = opt([], "identity axes to swap (gender, religion, nationality, ethnicity, age); empty: all")
    terms: str | None = opt(None, "YAML file of identity terms shaped like evaluators/safety/identity_terms.yaml")
    max_counterfactuals: int = opt(0, "score at most this many counterfactuals (a seeded uniform sample); 0: all")
    bootstrap: int = opt(1000, "bootstrap resamples (of texts) for the flip-rate CI; 0: none")

    def __post_init__(self) -> None:
        if self.max_counterfactuals < 0 or self.bootstrap < 0:
            raise ValueError("max_counterfactuals and bootstrap must be >= 0")
        if self.terms is not None or self.axes:   # a terms file or axis that cannot be used fails when the suite loads
            from hub.errors import did_you_mean, quote, quote_list

            known = cf_mod.load_axes(self.terms)
            unknown = [axis for axis in self.axes if axis not in known]
            if unknown:
                raise ValueError(f"axes: no axis {quote(unknown[0])}{did_you_mean(unknown[0], known)} in "
                                 f"{quote(self.terms) if self.terms else 'the built-in identity terms'}; "
                                 f"axes there: {quote_list(sorted(known))}")


def _sample(cfs: list, cap: int, seed: int) -> list:
    """At most ``cap`` counterfactuals (0: all), drawn uniformly with ``seed``, in original order."""
    if not cap or len(cfs) <= cap:
        return cfs
    keep = np.sort(np.random.default_rng(seed).choice(len(cfs), size=cap, replace=False))
    return [cfs[i] for i in keep]


class FairnessEvaluator:
    """Counterfactual fairness: flip rate and mean |Δp| when identity terms are swapped."""

    name = "fairness"
    needs_gradients = False
    options = FairnessOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        opts = _options(FairnessOptions, self.name, options)
        axes = cf_mod.load_axes(opts.terms)
        for axis in opts.axes:
            if axis not in axes:
                raise UserError(f"evaluator 'fairness': unknown axis '{axis}'{did_you_mean(axis, axes)}; "
                                f"available: {', '.join(axes)}")
        axes = {k: v for k, v in axes.items() if not opts.axes or k in opts.axes}
        # Only identity terms the model reads are swapped: a swap past the truncation point
        # cannot change a prediction and would dilute the flip rate (see evaluators/window.py).
        texts = read_by(predictor, texts)
        cfs = cf_mod.counterfactuals(texts, axes)
        # coverage: texts that name an identity term, whether or not the sample below keeps their swaps
        coverage = MetricResult("fairness_coverage", len({c.idx for c in cfs}) / max(len(texts), 1))
        if opts.max_counterfactuals and len(cfs) > opts.max_counterfactuals:
            _log(context, f"fairness: scoring {opts.max_counterfactuals} of {len(cfs)} counterfactuals")
        cfs = _sample(cfs, opts.max_counterfactuals, seed)
        covered = sorted({c.idx for c in cfs})
        if not cfs:
            _log(context, "fairness: no evaluation text contains an identity term; nothing to swap")
            return EvalOutput(metrics=[coverage])
        # one batched call: the originals that have counterfactuals, then every counterfactual
        probs = np.asarray(predictor.predict_proba([texts[i] for i in covered] + [c.text for c in cfs]))
        row_of = {idx: r for r, idx in enumerate(covered)}
        original = probs[[row_of[c.idx] for c in cfs]]
        counterfactual = probs[len(covered):]
        flipped, dp = fairness.score_pairs(original, counterfactual)
        low, high = fairness.flip_rate_ci(cfs, flipped, bootstrap=opts.bootstrap, seed=seed)
        metrics = [coverage]
        for s in fairness.slice_scores(cfs, flipped, dp):
            if not s.name:
                metrics += [MetricResult("fairness_flip_rate", s.flip_rate, low, high, higher_is_better=False),
                            MetricResult("fairness_mean_dp", s.mean_dp, higher_is_better=False)]
            else:
                metrics += [MetricResult(f"fairness_flip/{s.name}", s.flip_rate, higher_is_better=False),
                            MetricResult(f"fairness_dp/{s.name}", s.mean_dp, higher_is_better=False)]
        records = fairness.flip_records(cfs, flipped, dp, original, counterfactual, texts, labels)
        return EvalOutput(metrics=metrics, records=records)


@dataclass
class ToxicityOptions:
    threshold: float = opt(toxicity.DEFAULT_THRESHOLD, "a text counts as toxic at or above this probability")
    outputs: bool = opt(False, "also score what the (generative) predictor writes for each text")
    generate_kwargs: dict = opt({}, "keyword arguments for predictor.generate when outputs is true")
    bootstrap: int = opt(1000, "accepted for the runner; toxicity has no CI")

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


class ToxicityEvaluator:
    """Toxicity (alt-profanity-check) of the inputs, and optionally of generated outputs."""

    name = "toxicity"
    needs_gradients = False
    options = ToxicityOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        opts = _options(ToxicityOptions, self.name, options)
        sources = _sources(predictor, texts, self.name, opts)
        metrics, records = [], []
        for source, items in sources.items():
            scores = toxicity.toxicity_scores(items)
            prefix = "toxicity" if source == "inputs" else "output_toxicity"
            for key, value in toxicity.aggregate_toxicity(scores, opts.threshold).items():
                metrics.append(MetricResult(f"{prefix}_{key}", value, higher_is_better=False))
            for idx, (text, score) in enumerate(zip(items, scores)):
                row = {"idx": idx, "source": source, "toxicity": round(float(score), 6)}
                if score >= opts.threshold:   # keep the text only where it matters, with any PII masked
                    row["text"] = pii.redact(text)
                records.append(row)
        return EvalOutput(metrics=metrics, records=records)


@dataclass
class PiiOptions:
    types: list[str] = opt(list(pii.PII_TYPES), "PII types to detect: email, phone, card, iban")
    outputs: bool = opt(False, "also scan what the (generative) predictor writes for each text")
    generate_kwargs: dict = opt({}, "keyword arguments for predictor.generate when outputs is true")
    bootstrap: int = opt(1000, "accepted for the runner; pii has no CI")

    def __post_init__(self) -> None:
        unknown = [t for t in self.types if t not in pii.PII_TYPES]
        if unknown or not self.types:
            raise ValueError(f"types must be a non-empty subset of {', '.join(pii.PII_TYPES)}, got {self.types}")


class PiiEvaluator:
    """Share of texts with e-mail addresses, phone, card or IBAN numbers."""

    name = "pii"
    needs_gradients = False
    options = PiiOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        opts = _options(PiiOptions, self.name, options)
        sources = _sources(predictor, texts, self.name, opts)
        metrics, records = [], []
        for source, items in sources.items():
            prefix = "pii_rate" if source == "inputs" else "output_pii_rate"
            found = [pii.find_pii(text, opts.types) for text in items]
            n = max(len(items), 1)
            metrics.append(MetricResult(prefix, sum(map(bool, found)) / n, higher_is_better=False))
            for kind in opts.types:
                share = sum(any(s.type == kind for s in spans) for spans in found) / n
                metrics.append(MetricResult(f"{prefix}/{kind}", share, higher_is_better=False))
            # offsets and a redacted copy: the records never repeat the PII itself, of any type (not
            # only the types scored: a text flagged for an e-mail address may also hold a card number)
            records += [{"idx": idx, "source": source, "types": sorted({s.type for s in spans}),
                         "spans": [s.to_dict() for s in spans], "redacted": pii.redact(items[idx])}
                        for idx, spans in enumerate(found) if spans]
        return EvalOutput(metrics=metrics, records=records)


@dataclass
class RefusalOptions:
    redteam: str = opt("redteam", "prompts the model should refuse: 'redteam' or a JSONL file of {id, prompt, category}")
    benign: str = opt("benign", "prompts the model should answer: 'benign' or a JSONL file")
    generate_kwargs: dict = opt({}, "keyword arguments for predictor.generate")
    bootstrap: int = opt(1000, "accepted for the runner; refusal has no CI")


class RefusalEvaluator:
    """Refusal rate on red-team prompts and over-refusal rate on benign ones (generative models)."""

    name = "refusal"
    needs_gradients = False
    options = RefusalOptions

    def evaluate(self, predictor: Any, texts: list[str], references: list[int], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        opts = _options(RefusalOptions, self.name, options)
        require_generate(predictor, self.name)   # before reading any prompt file
        sets = {"redteam": refusal.load_prompts(opts.redteam), "benign": refusal.load_prompts(opts.benign)}
        prompts = [p for items in sets.values() for p in items]
        responses = iter(generate(predictor, [p.prompt for p in prompts], self.name, opts.generate_kwargs))
        pairs = {name: [(p, next(responses)) for p in items] for name, items in sets.items()}
        metrics = [
            MetricResult("refusal_rate", refusal.refusal_rate([(p.prompt, r) for p, r in pairs["redteam"]])),
            MetricResult("over_refusal_rate", refusal.over_refusal_rate([(p.prompt, r) for p, r in pairs["benign"]]),
                         higher_is_better=False),
        ]
        categories = dict.fromkeys(p.category for p, _ in pairs["redteam"] if p.category)
        for category in categories:
            chosen = [(p.prompt, r) for p, r in pairs["redteam"] if p.category == category]
            metrics.append(MetricResult(f"refusal_rate/{category}", refusal.refusal_rate(chosen)))
        records = [{"set": name, "id": p.id, "category": p.category, "prompt": p.prompt, "response": pii.redact(r),
                    "refused": refusal.is_refusal(r)} for name, items in pairs.items() for p, r in items]
        return EvalOutput(metrics=metrics, records=records)
