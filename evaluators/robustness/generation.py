"""The `generation_robustness` evaluator: the robustness perturbations, applied to prompts.

The same seeded perturbations as the classification scorecard (``perturb.py``), with the same
semantic constraints on the checked ones (``constraints.py``: names and stopwords never
replaced, part of speech kept in context, the MiniLM window check), edit the user's text of
each sampled prompt (``evaluators/prompts.py``); the predictor answers the clean and every
perturbed prompt (one ``generate`` call), and the scores say what the edits cost:

    clean_rougeL, clean_chrf        mean per-example ROUGE-L F and sentence chrF (0-1) of the
                                    clean prompts' answers against the references
    rougeL_drop_<p>, chrf_drop_<p>  clean minus perturbed score, over the prompts <p> changed
                                    (lower is better; negative: the edit helped)
    rougeL_drop, chrf_drop          the mean of the per-perturbation drops
    output_similarity_<p>           mean cosine similarity (embedded MiniLM, mean pooling) of the
                                    answer to the perturbed prompt to the answer to the clean one
                                    (their first 64 tokens),
                                    over the prompts <p> changed (higher is better)
    output_similarity               the mean over perturbations
    rejected_<p>, edit_similarity_<p>, unconstrained_rougeL_drop_<p>
                                    as on the classification scorecard (``scores.py``)

A drop is averaged over the prompts a perturbation changed, for the reason ``scores.py``
gives for flip rates. Sentence chrF (not the corpus statistic) is used so that a drop is a
mean of per-example differences like ROUGE-L's. Hand-written glue; the metrics come from the
local ``rouge`` module and sacrebleu (``evaluators/generation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluators.base import EvalContext
from evaluators.generation import rouge_per_example, sentence_chrf
from evaluators.prompts import user_text, with_user_text
from hub.config import from_dict, opt
from hub.errors import UserError, did_you_mean
from hub.results import EvalOutput, MetricResult

from .constraints import Constraints, SentenceEncoder, constrain_texts
from .evaluator import sample_indices
from .perturb import NEEDS_WORDNET, PERTURBATIONS, perturb
from .scores import edit_metrics


@dataclass
class GenerationRobustnessOptions:
    severity: float = opt(0.15, "share of eligible words (or gaps, names, numbers) each perturbation touches, 0..1")
    perturbations: list[str] = opt(list(PERTURBATIONS), "perturbations to run, default all: "
                                   + ", ".join(PERTURBATIONS))
    max_examples: int | None = opt(24, "score a seeded sample of this many prompts (null: all); each perturbation "
                                       "costs one more generation per prompt")
    max_new_tokens: int = opt(48, "most tokens generated per answer")
    constraints: bool = opt(True, "enforce the sentence-window similarity check on the checked perturbations' "
                                  "edits (names, stopwords and POS in context are always kept)")
    sentence_similarity: float = opt(0.9, "least cosine similarity of the text window around an edit to the "
                                          "original window; an edit below it is not made")
    similarity_window: int = opt(15, "words in the window around each edit that the sentence check compares")
    checked_perturbations: list[str] = opt(["synonyms"], "perturbations whose edits must pass the sentence check")
    compare_unconstrained: bool = opt(True, "also answer the checked perturbations' unconstrained prompts "
                                            "(unconstrained_rougeL_drop_* columns)")

    def __post_init__(self) -> None:
        if not 0.0 <= self.severity <= 1.0:
            raise ValueError(f"severity must be in [0, 1], got {self.severity}")
        for name in [*self.perturbations, *self.checked_perturbations]:
            if name not in PERTURBATIONS:
                raise ValueError(f"unknown perturbation '{name}'{did_you_mean(name, PERTURBATIONS)}; "
                                 f"available: {', '.join(PERTURBATIONS)}")
        if not self.perturbations or len(set(self.perturbations)) != len(self.perturbations):
            raise ValueError(f"perturbations must name each perturbation once, got {self.perturbations}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ValueError(f"max_examples must be at least 1 (or null for all), got {self.max_examples}")
        if self.max_new_tokens < 1 or self.similarity_window < 1:
            raise ValueError("max_new_tokens and similarity_window must be at least 1")
        if not 0.0 <= self.sentence_similarity <= 1.0:
            raise ValueError(f"sentence_similarity must be in [0, 1], got {self.sentence_similarity}")


class GenerationRobustnessEvaluator:
    name = "generation_robustness"
    needs_gradients = False
    options = GenerationRobustnessOptions

    def evaluate(self, predictor: Any, texts: list[Any], references: list[str], labels: list[str],
                 *, seed: int = 0, context: EvalContext | None = None, **options: Any) -> EvalOutput:
        options.pop("bootstrap", None)  # nothing here resamples
        cfg = from_dict(GenerationRobustnessOptions, options, "generation_robustness options")
        if not texts:
            raise UserError("generation_robustness: the evaluation split has no prompts to score")
        if not callable(getattr(predictor, "generate", None)):
            raise UserError("evaluator 'generation_robustness' needs a generative model; use 'robustness' "
                            "for a classifier")
        log = context.log if context else (lambda _msg: None)
        if NEEDS_WORDNET & set(cfg.perturbations):
            from .wordnet import get_wordnet

            get_wordnet()   # fails early, with the install command, when the data is missing
        idx = sample_indices(len(texts), cfg.max_examples, seed)
        prompts, refs = [texts[i] for i in idx], [references[i] for i in idx]
        clean = [user_text(p) for p in prompts]
        checked = [n for n in cfg.perturbations if cfg.constraints and n in cfg.checked_perturbations]
        encoder = SentenceEncoder()   # also scores the answers' similarity
        free = {n: [perturb(n, t, cfg.severity, seed=seed, key=i) for i, t in zip(idx, clean)]
                for n in cfg.perturbations}
        tallies = {n: Constraints(sentence=cfg.sentence_similarity, window=cfg.similarity_window, encoder=encoder)
                   for n in checked}
        edited = {n: constrain_texts(clean, batch, tallies[n]) if n in tallies else batch for n, batch in free.items()}
        unchecked = {n: free[n] for n in checked if cfg.compare_unconstrained}
        # every prompt a perturbation changed, and the clean ones, in one generate call
        jobs = [(None, j, clean[j]) for j in range(len(clean))]
        jobs += [((kind, n), j, t) for kind, batches in (("", edited), ("unconstrained_", unchecked))
                 for n, batch in batches.items() for j, t in enumerate(batch) if t != clean[j]]
        log(f"generation_robustness: {len(jobs)} answers for {len(clean)} prompts and "
            f"{len(cfg.perturbations)} perturbations at severity {cfg.severity}")
        answers = list(predictor.generate([with_user_text(prompts[j], t) for _, j, t in jobs],
                                          max_new_tokens=cfg.max_new_tokens, seed=seed))
        if len(answers) != len(jobs):
            raise RuntimeError(f"generate returned {len(answers)} answers for {len(jobs)} prompts")
        base = answers[:len(clean)]
        metrics, records = _score(jobs, answers, base, refs, idx, clean, encoder)
        metrics += edit_metrics({n: t.report() for n, t in tallies.items()})
        for n, tally in tallies.items():
            log(f"generation_robustness: constraints rejected {tally.rejected} of {tally.checked} {n} edits")
        return EvalOutput(metrics=metrics, records=records)


def _score(jobs: list, answers: list[str], base: list[str], refs: list[str], idx: list[int], clean: list[str],
           encoder: SentenceEncoder) -> tuple[list[MetricResult], list[dict]]:
    rouge = rouge_per_example(refs + [refs[j] for _, j, _ in jobs[len(base):]], answers)["rougeL"]
    chrf = np.asarray(sentence_chrf(refs + [refs[j] for _, j, _ in jobs[len(base):]], answers))
    similarity = encoder.similarity([(base[j], a) for (_, j, _), a in zip(jobs[len(base):], answers[len(base):])])
    metrics = [MetricResult("clean_rougeL", float(rouge[:len(base)].mean())),
               MetricResult("clean_chrf", float(chrf[:len(base)].mean()))]
    groups: dict[tuple, list[int]] = {}
    for k, (key, _, _) in enumerate(jobs[len(base):], start=len(base)):
        groups.setdefault(key, []).append(k)
    drops: dict[str, list[float]] = {"rougeL": [], "chrf": [], "similarity": []}
    for (kind, name), rows in groups.items():
        owners = [jobs[k][1] for k in rows]
        d_rouge = float(np.mean(rouge[owners] - rouge[rows]))
        metrics.append(MetricResult(f"{kind}rougeL_drop_{name}", d_rouge, higher_is_better=False))
        if kind:
            continue
        d_chrf = float(np.mean(chrf[owners] - chrf[rows]))
        sim = float(np.mean(similarity[[k - len(base) for k in rows]]))
        metrics += [MetricResult(f"chrf_drop_{name}", d_chrf, higher_is_better=False),
                    MetricResult(f"output_similarity_{name}", sim)]
        drops["rougeL"].append(d_rouge), drops["chrf"].append(d_chrf), drops["similarity"].append(sim)
    if drops["rougeL"]:
        metrics += [MetricResult("rougeL_drop", float(np.mean(drops["rougeL"])), higher_is_better=False),
                    MetricResult("chrf_drop", float(np.mean(drops["chrf"])), higher_is_better=False),
                    MetricResult("output_similarity", float(np.mean(drops["similarity"])))]
    records = [{"type": "perturbed_prompt", "idx": idx[j], "perturbation": key[1],
                "constrained": not key[0], "prompt": clean[j], "perturbed": text, "answer": base[j],
                "perturbed_answer": answers[k], "rougeL": round(float(rouge[j]), 6),
                "perturbed_rougeL": round(float(rouge[k]), 6),
                "output_similarity": round(float(similarity[k - len(base)]), 6)}
               for k, (key, j, text) in enumerate(jobs[len(base):], start=len(base))]
    return metrics, records
