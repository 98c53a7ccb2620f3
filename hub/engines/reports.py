"""Parity and latency reports for every engine build.

Parity compares an engine's logits with the eager fp32 torch model on the evaluation
split (it passes on argmax agreement and accuracy delta, and only with finite logits); latency times the engine over a batch × sequence-length grid. Both are plain
numpy over the predictor contract, written here because no library reports exactly this.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import numpy as np

AGREEMENT_MIN = 0.99       # argmax agreement with torch fp32 needed to pass
ACCURACY_DELTA_MAX = 0.01  # |accuracy(engine) - accuracy(torch)| allowed to pass
GRID_BATCH = (1, 8, 32)
GRID_SEQ = (32, 128)


def parity_report(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Max/mean |Δlogit|, argmax agreement and accuracy delta of ``candidate`` vs ``reference``."""
    ref_pred, cand_pred = reference.argmax(1), candidate.argmax(1)
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    acc_ref = float((ref_pred == labels).mean())
    acc_cand = float((cand_pred == labels).mean())
    report = {
        "n": int(len(labels)),
        "max_abs_logit_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_logit_diff": float(diff.mean()) if diff.size else 0.0,
        "agreement": float((ref_pred == cand_pred).mean()),
        "accuracy_torch": acc_ref,
        "accuracy_engine": acc_cand,
        "accuracy_delta": acc_cand - acc_ref,
    }
    # argmax takes NaN for the largest value: an engine with NaN or infinite logits must not pass on agreement
    report["finite"] = bool(np.isfinite(candidate).all())
    report["passed"] = (report["finite"] and report["agreement"] >= AGREEMENT_MIN
                        and abs(report["accuracy_delta"]) <= ACCURACY_DELTA_MAX)
    return report


def synthetic_batch(tokenizer: Any, batch: int, seq: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of exactly ``seq`` tokens per row: [CLS] random ids [SEP], no padding."""
    rng = np.random.default_rng(seed)
    special = set(tokenizer.all_special_ids)
    vocab = np.array([i for i in range(min(tokenizer.vocab_size, 30000)) if i not in special])
    ids = rng.choice(vocab, size=(batch, seq))
    ids[:, 0] = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else ids[0, 0]
    ids[:, -1] = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else ids[0, -1]
    return {"input_ids": ids.astype(np.int64), "attention_mask": np.ones((batch, seq), np.int64),
            "token_type_ids": np.zeros((batch, seq), np.int64)}


def time_call(fn: Any, inputs: dict, *, warmup: int = 2, min_runs: int = 5, budget_s: float = 2.0) -> list[float]:
    """Wall-clock seconds of ``fn(inputs)`` after warm-up: at least ``min_runs``, within ``budget_s``."""
    for _ in range(warmup):
        fn(inputs)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < min_runs or (time.perf_counter() < deadline and len(times) < 200):
        start = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - start)
    return times


def latency_report(predictor: Any, tokenizer: Any, *, batches=GRID_BATCH, seqs=GRID_SEQ,
                   budget_s: float = 1.5) -> dict[str, Any]:
    """p50/p95 latency (ms) and throughput (samples/s) over the grid, with the machine."""
    cells = []
    for seq in seqs:
        if seq > getattr(predictor, "max_length", seq):
            continue
        for batch in batches:
            inputs = synthetic_batch(tokenizer, batch, seq)
            times = np.array(time_call(predictor.run, inputs, budget_s=budget_s)) * 1000
            p50 = float(np.percentile(times, 50))
            cells.append({"batch": batch, "seq": seq, "p50_ms": p50, "p95_ms": float(np.percentile(times, 95)),
                          "throughput": batch * 1000 / p50, "runs": int(len(times))})
    return {"engine": predictor.engine, "machine": machine_info(), "cells": cells}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()}


def latency_metrics(report: dict[str, Any]) -> dict[str, float]:
    """Leaderboard columns from a latency report: p50 at batch 1 and 32 for the longest length."""
    cells = report.get("cells", [])
    if not cells:
        return {}
    seq = max(c["seq"] for c in cells)
    out = {}
    for cell in cells:
        if cell["seq"] == seq and cell["batch"] in (1, 32):
            out[f"p50_ms_b{cell['batch']}_s{seq}"] = cell["p50_ms"]
            out[f"throughput_b{cell['batch']}_s{seq}"] = cell["throughput"]
    return out
