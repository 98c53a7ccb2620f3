"""The text-generation scorecard and the `generation` evaluator.

Scores are all in [0, 1], like accuracy on the classification scorecard (sacrebleu's chrF
and BLEU, which it reports in points, are divided by 100):

- rouge1, rouge2, rougeL: the mean of per-example F-measures (rouge-score's RougeScorer,
  no stemming), CI = percentile bootstrap of that mean over examples.
- chrf, bleu: sacrebleu's *corpus* statistic (n-gram counts pooled over the corpus, then one
  F-score / one BLEU), which is not the mean of sentence-level scores. Its CI is therefore a
  percentile bootstrap of the corpus statistic itself: examples are resampled, their
  per-sentence n-gram count vectors (sacrebleu's `_extract_corpus_statistics`) summed, and
  the score recomputed from the sums (`_compute_score_from_stats`), which is what
  sacrebleu's own `n_bootstrap` does, but seeded by us and returning percentiles.
  Hand-written because sacrebleu's version reports mean +- a spread, not a seeded
  percentile interval; summing count vectors with a matrix product keeps 1,000 resamples
  of 100 examples in milliseconds.
- exact_match: mean of per-example 0/1 after stripping and collapsing whitespace, with a CI.
- perplexity (only from a predictor that has `perplexity` and when the option is on): the
  mean of the per-example perplexities of the reference response, lower is better. It is
  a mean of per-example values, not exp of the corpus mean token NLL, because the
  predictor returns one perplexity per example and no token counts.

Every bootstrap draws the same resample indices for a given seed and length, so the CIs
of different metrics come from the same resamples. The values come from the local
`evaluate` modules in `evaluators/metrics/`, so the scorecard and `load_metric` agree.
No response-length score is reported: a length has no better direction, and a
`MetricResult` must declare one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hub.config import from_dict, opt
from hub.errors import UserError
from hub.results import EvalOutput, MetricResult, mean_with_ci

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
_CHUNK_ELEMENTS = 1 << 22   # bound on the resample index matrix drawn at once, as in hub.results


def generation_metrics(references: Sequence[str], predictions: Sequence[str], *, bootstrap: int = 1000,
                       seed: int = 0, confidence: float = 0.95) -> list[MetricResult]:
    """Score generated responses against one reference each: rouge1/2/L, chrf, bleu, exact_match.

    All values in [0, 1], higher is better; CIs at `confidence` from `bootstrap` seeded
    resamples (`bootstrap=0` or a single example: no CI). Raises ValueError for no
    examples, non-string items or a length mismatch.
    """
    refs, preds = _check_inputs(references, predictions)
    if bootstrap < 0:
        raise ValueError(f"bootstrap must be >= 0, got {bootstrap}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ci = {"bootstrap": bootstrap, "seed": seed, "confidence": confidence}
    per_example = rouge_per_example(refs, preds)
    results = [mean_with_ci(t, per_example[t], **ci) for t in ROUGE_TYPES]
    results.append(corpus_metric("chrf", refs, preds, **ci))
    results.append(corpus_metric("bleu", refs, preds, **ci))
    from evaluators.metrics import load_metric

    matches = load_metric("exact_match").compute(references=refs, predictions=preds,
                                                 use_aggregator=False)["exact_match"]
    results.append(mean_with_ci("exact_match", np.asarray(matches), **ci))
    return results


def rouge_per_example(references: list[str], predictions: list[str]) -> dict[str, np.ndarray]:
    """Per-example ROUGE F-measures (rouge1, rouge2, rougeL), from the local `rouge` module."""
    from evaluators.metrics import load_metric

    scores = load_metric("rouge").compute(references=references, predictions=predictions,
                                          rouge_types=list(ROUGE_TYPES), use_aggregator=False)
    return {t: np.asarray(scores[t], dtype=np.float64) for t in ROUGE_TYPES}


def sentence_chrf(references: list[str], predictions: list[str]) -> list[float]:
    """Per-example chrF in [0, 1] (sacrebleu's sentence score / 100), for per-example records."""
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    return [metric.sentence_score(p, [r]).score / 100.0 for p, r in zip(predictions, references)]


def corpus_metric(name: str, references: list[str], predictions: list[str], *, bootstrap: int, seed: int,
                  confidence: float) -> MetricResult:
    """Corpus chrF or BLEU in [0, 1], with a percentile bootstrap CI of the corpus statistic."""
    from sacrebleu.metrics import BLEU, CHRF

    from evaluators.metrics import load_metric

    value = load_metric(name).compute(references=references, predictions=predictions)[name]
    if bootstrap <= 0 or len(predictions) < 2:
        return MetricResult(name, value)
    metric = CHRF() if name == "chrf" else BLEU()
    stats = np.asarray(metric._extract_corpus_statistics(predictions, [references]), dtype=np.int64)
    low, high = bootstrap_corpus_ci(metric, stats, bootstrap, seed, confidence)
    return MetricResult(name, value, low, high)


def bootstrap_corpus_ci(metric: Any, stats: np.ndarray, n_resamples: int, seed: int,
                        confidence: float) -> tuple[float, float]:
    """Percentile CI (in [0, 1]) of a sacrebleu corpus score, resampling the rows of `stats`.

    `stats` is (n_examples, n_counts), sacrebleu's per-sentence sufficient statistics; each
    resample sums its rows and asks `metric._compute_score_from_stats` for the score. The
    indices are drawn exactly as `hub.results.bootstrap_mean_ci` draws them.
    """
    rng = np.random.default_rng(seed)
    n = len(stats)
    rows = max(1, _CHUNK_ELEMENTS // n)
    scores = []
    for start in range(0, n_resamples, rows):
        idx = rng.integers(0, n, size=(min(rows, n_resamples - start), n))
        # counts[b, i]: how often example i is in resample b; counts @ stats sums each resample's rows
        flat = (idx + np.arange(len(idx))[:, None] * n).ravel()
        counts = np.bincount(flat, minlength=len(idx) * n).reshape(len(idx), n)
        for row in counts @ stats:
            scores.append(metric._compute_score_from_stats(row.tolist()).score / 100.0)
    alpha = 1.0 - confidence
    low, high = np.quantile(np.asarray(scores), [alpha / 2, 1.0 - alpha / 2])
    return float(low), float(high)


def _check_inputs(references, predictions) -> tuple[list[str], list[str]]:
    refs, preds = list(references), list(predictions)
    if not refs:
        raise ValueError("no examples to score")
    if len(preds) != len(refs):
        raise ValueError(f"length mismatch: {len(refs)} references, {len(preds)} predictions")
    for what, items in (("references", refs), ("predictions", preds)):
        bad = next((i for i, x in enumerate(items) if not isinstance(x, str)), None)
        if bad is not None:
            raise ValueError(f"{what}[{bad}] must be a string, got {type(items[bad]).__name__}")
    return refs, preds


@dataclass
class GenerationOptions:
    max_new_tokens: int = opt(128, "most tokens generated per response")
    do_sample: bool = opt(False, "sample instead of greedy decoding (seeded by the run's seed)")
    temperature: float = opt(1.0, "sampling temperature (used when do_sample is on)")
    top_p: float = opt(1.0, "nucleus sampling mass, in (0, 1] (used when do_sample is on)")
    perplexity: bool = opt(True, "also score the reference's perplexity when the predictor can")

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


class GenerationEvaluator:
    """Generate a response per prompt and score it against the reference (see the module doc)."""

    name = "generation"
    needs_gradients = False
    options = GenerationOptions

    def evaluate(self, predictor: Any, texts: list[Any], references: list[str], labels: list[str],
                 *, seed: int = 0, context: Any = None, bootstrap: int = 1000, **options: Any) -> EvalOutput:
        cfg = from_dict(GenerationOptions, options, "generation options")
        if not texts:
            raise UserError("generation: the evaluation split has no examples to score")
        if len(texts) != len(references):
            raise ValueError(f"length mismatch: {len(texts)} prompts, {len(references)} references")
        outputs = list(predictor.generate(list(texts), max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                                          temperature=cfg.temperature, top_p=cfg.top_p, seed=seed))
        if len(outputs) != len(texts):
            raise ValueError(f"predictor.generate returned {len(outputs)} responses for {len(texts)} prompts")
        metrics = generation_metrics(references, outputs, bootstrap=bootstrap, seed=seed)
        if cfg.perplexity and callable(getattr(predictor, "perplexity", None)):
            ppl = np.asarray(predictor.perplexity(list(texts), list(references)), dtype=np.float64)
            metrics.append(mean_with_ci("perplexity", ppl, bootstrap=bootstrap, seed=seed, higher_is_better=False))
        rouge_l = rouge_per_example(list(references), outputs)["rougeL"]
        chrf = sentence_chrf(list(references), outputs)
        records = [{"idx": i, "prompt": prompt, "reference": ref, "output": out,
                    "rougeL": round(float(rl), 6), "chrf": round(float(c), 6)}
                   for i, (prompt, ref, out, rl, c) in enumerate(zip(texts, references, outputs, rouge_l, chrf))]
        return EvalOutput(metrics=metrics, predictions=[], records=records)
