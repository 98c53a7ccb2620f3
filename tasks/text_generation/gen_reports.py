"""Parity and latency reports for generation engines.

Parity compares a candidate engine with the eager fp32 torch reference on the same prompts:
the share of prompts whose first ``n_tokens`` greedy tokens are identical, the largest
|Δlogit| at the first generated position, and the ROUGE-L and chrF of each engine's outputs
against the reference responses. It passes when the candidate's logits are finite and its
ROUGE-L is at most ``rouge_bound`` below the reference's: an int4 engine rarely keeps every
token, so token agreement is reported, not required. Latency times ``generate_ids`` over a
batch x prompt-length grid of synthetic prompts of exact token lengths.

ROUGE-L comes from ``rouge_score``, chrF from ``sacrebleu``; the rest is plain numpy over the
predictor contract, written here because no library reports exactly this.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from hub.engines.reports import machine_info
from hub.errors import UserError

ROUGE_BOUND = 0.01          # ROUGE-L drop (0-1 scale) allowed to pass: one point


def text_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-L F1 and corpus chrF, both on a 0-1 scale."""
    import sacrebleu
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)]
    chrf = sacrebleu.corpus_chrf(list(predictions), [list(references)]).score / 100
    return {"rougeL": float(np.mean(rouge)) if rouge else 0.0, "chrf": float(chrf)}


def parity_report(reference: Any, candidate: Any, prompts: Sequence[Any], references: Sequence[str], *,
                  n_tokens: int = 32, max_new_tokens: int = 64,
                  metric_fn: Callable[[list[str], list[str]], dict[str, float]] | None = None,
                  rouge_bound: float = ROUGE_BOUND) -> dict[str, Any]:
    """How far ``candidate`` is from ``reference`` (the torch fp32 predictor) on ``prompts``."""
    prompts, references = list(prompts), list(references)
    if len(prompts) != len(references):
        raise UserError(f"parity: {len(prompts)} prompts but {len(references)} references")
    metric_fn = metric_fn or text_scores
    ref_ids, cand_ids = reference.token_ids(prompts, n_tokens), candidate.token_ids(prompts, n_tokens)
    agree = [a == b for a, b in zip(ref_ids, cand_ids)]
    ref_logits, cand_logits = reference.first_step_logits(prompts), candidate.first_step_logits(prompts)
    if ref_logits.shape != cand_logits.shape:
        raise UserError(f"parity: {candidate.engine} gives logits of shape {cand_logits.shape} where "
                        f"{reference.engine} gives {ref_logits.shape}; the vocabularies differ, rebuild the engine")
    finite = bool(np.isfinite(cand_logits).all())
    diff = np.abs(ref_logits.astype(np.float64) - cand_logits.astype(np.float64))
    max_diff = (float(diff.max()) if diff.size else 0.0) if finite else float("inf")   # NaN never looks small
    ref_scores = metric_fn(reference.generate(prompts, max_new_tokens), references)
    cand_out = candidate.generate(prompts, max_new_tokens)
    cand_scores = metric_fn(cand_out, references)
    rouge_delta = cand_scores["rougeL"] - ref_scores["rougeL"]
    report = {
        "n": len(prompts), "n_tokens": n_tokens, "max_new_tokens": max_new_tokens,
        "token_agreement": float(np.mean(agree)) if agree else 1.0,
        "max_abs_logit_diff": max_diff,
        "mean_abs_logit_diff": (float(diff.mean()) if diff.size else 0.0) if finite else float("inf"),
        "finite": finite,
        "rougeL_reference": ref_scores["rougeL"], "rougeL_engine": cand_scores["rougeL"],
        "rougeL_delta": rouge_delta,
        "chrf_reference": ref_scores.get("chrf"), "chrf_engine": cand_scores.get("chrf"),
        "chrf_delta": (cand_scores["chrf"] - ref_scores["chrf"]) if "chrf" in cand_scores and "chrf" in ref_scores
        else None,
        "rouge_bound": rouge_bound,
        "reference": reference.engine, "engine": candidate.engine,
    }
    report["passed"] = finite and -rouge_delta <= rouge_bound
    return report


def synthetic_prompts(tokenizer: Any, batch: int, length: int, seed: int = 0) -> list[list[int]]:
    """``batch`` rows of exactly ``length`` random ordinary token ids (no special tokens)."""
    rng = np.random.default_rng(seed)
    special = set(tokenizer.all_special_ids)
    vocab = np.array([i for i in range(min(len(tokenizer), 50000)) if i not in special])
    return rng.choice(vocab, size=(batch, length)).tolist()


def latency_report(predictor: Any, tokenizer: Any, *, batches: Sequence[int] = (1, 8),
                   prompt_lengths: Sequence[int] = (32, 256), new_tokens: int = 32,
                   budget_s: float = 5.0, min_runs: int = 2) -> dict[str, Any]:
    """Per (batch, prompt length): time to first token, generated tokens/s and the median wall
    time of one call generating exactly ``new_tokens`` per row (end-of-sequence ignored), after
    one warm-up call. Lengths that do not fit the context with ``new_tokens`` are skipped."""
    cells = []
    for length in prompt_lengths:
        if length + new_tokens > predictor.context_length:
            continue
        for batch in batches:
            rows = synthetic_prompts(tokenizer, batch, length)
            predictor.generate_ids(rows, new_tokens, ignore_eos=True)          # warm-up
            stats, deadline = [], time.perf_counter() + budget_s
            while len(stats) < min_runs or (time.perf_counter() < deadline and len(stats) < 50):
                predictor.generate_ids(rows, new_tokens, ignore_eos=True)
                stats.append(dict(predictor.last_stats))
            seconds = np.array([s["seconds"] for s in stats])
            ttft = [s["ttft_s"] for s in stats if s["ttft_s"] is not None]
            p50 = float(np.median(seconds))
            cells.append({"batch": batch, "prompt_tokens": length, "new_tokens": new_tokens,
                          "ttft_ms": float(np.median(ttft) * 1000) if ttft else None,
                          "tokens_per_s": float(np.median([s["tokens_per_s"] for s in stats])),
                          "p50_ms": p50 * 1000, "runs": len(stats)})
    return {"engine": predictor.engine, "machine": machine_info(), "cells": cells}


def latency_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Leaderboard columns: tokens/s, time to first token and p50 per batch at the shortest
    prompt length (``tokens_per_s_b1``, ``ttft_ms_b1``, ``p50_ms_b1``, ``tokens_per_s_b8``…),
    and every cell with its prompt length as well (``tokens_per_s_b1_p256``…)."""
    cells = report.get("cells", [])
    if not cells:
        return {}
    shortest = min(c["prompt_tokens"] for c in cells)
    out: dict[str, float] = {}
    for c in cells:
        suffixes = [f"_b{c['batch']}_p{c['prompt_tokens']}"] + ([f"_b{c['batch']}"]
                                                                if c["prompt_tokens"] == shortest else [])
        for suffix in suffixes:
            for key in ("tokens_per_s", "ttft_ms", "p50_ms"):
                if c.get(key) is not None:
                    out[key + suffix] = float(c[key])
    return out
