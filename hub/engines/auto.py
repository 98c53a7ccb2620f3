"""`--backend auto`: build every available candidate, keep the fastest whose parity passes.

Each candidate is built once into scratch space and checked for parity against eager fp32
torch on the whole evaluation split (on a sample, an engine passed that then failed on the
full split). The candidates that pass are then timed at batch 1 and 32 at the longest
sequence length in alternating rounds (A B C, A B C, …; the median of each), so that a
burst of other work on the machine cannot decide the choice by landing on one candidate's
turn (it did once, when one measurement per candidate followed its build). The winner
(lowest geometric mean of the two latencies) is moved into the store and measured in full;
the engine record keeps every candidate's figures and the reason for the choice.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.build import (backend_for, build_context, build_into, measure, new_engine_id,
                               write_reports)
from hub.engines.reports import latency_report, parity_report
from hub.registries import ENGINES
from hub.store import Store

# Fastest-first guesses for a recent x86 CPU (DESIGN.md); the measurement decides.
CANDIDATES = (("openvino", "int8"), ("openvino", "bf16"), ("onnxruntime", "int8"), ("torch", "bf16"),
              ("tensorrt", "fp16"), ("tensorrt", "int8"), ("onnxruntime", "fp32"), ("torch", "fp32"))
# Options auto adds per backend. torch.compile costs 30-150 s at every load on 2 cores for
# ~7% at batch 1 and nothing at batch 32 (measured here), so auto times the eager bf16 model.
AUTO_OPTIONS = {"torch": {"compile": False}}
ROUNDS, ROUND_BUDGET_S = 3, 0.2   # timing rounds, and seconds per cell in each


def available_candidates() -> list[tuple[str, str]]:
    found = []
    for name, precision in CANDIDATES:
        backend = ENGINES.get(name)()
        if backend.is_available() and precision in backend.precisions:
            if name == "tensorrt" and not _has_cuda():
                continue
            found.append((name, precision))
    return found


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def chosen_candidates(names: Any) -> list[tuple[str, str]]:
    """The available candidates, or those of them named in ``--option candidates=[backend-precision, ...]``
    (UserError for a name that is not a candidate here, with what is)."""
    from hub.errors import UserError, did_you_mean, quote

    found = available_candidates()
    if names is None:
        return found
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or not names:
        raise UserError("--option candidates: give a list such as [openvino-int8,onnxruntime-int8]")
    here = {f"{b}-{p}": (b, p) for b, p in found}
    picked = []
    for name in (str(n).strip() for n in names):
        if name not in here:
            raise UserError(f"--option candidates: {quote(name)} is not a candidate on this machine"
                            f"{did_you_mean(name, list(here))}; candidates: {', '.join(here)}")
        picked.append(here[name])
    return picked


def build_auto(store: Store, variant_ref: str, *, options: dict | None = None, log=print) -> str:
    """``options``: backend options for every candidate, and ``candidates`` (a list of
    ``backend-precision``) to search fewer than every available one."""
    variant = store.get_variant(variant_ref)
    options = dict(options or {})
    candidates = chosen_candidates(options.pop("candidates", None))
    store.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.staging_dir, prefix="auto-") as work:
        ctx, evaluation = build_context(store, variant, Path(work), options)
        _, texts, refs, _ = evaluation
        from tasks.text_classification.predict import TorchPredictor

        reference = TorchPredictor(ctx.model, ctx.tokenizer, ctx.labels, max_length=ctx.max_length).logits(texts)
        built = [_trial(ctx, Path(work), name, precision, variant.id, texts, reference, refs, log)
                 for name, precision in candidates]
        _time_rounds(built, ctx, log)
        trials = [trial for trial, _ in built]
        del built   # the candidates' predictors (and any device memory they hold) go before the winner loads
        winner = _choose(trials)
        engine_id = new_engine_id(winner["backend"], winner["precision"])
        log(f"auto: chose {winner['backend']}-{winner['precision']} ({winner['why']})")
        with store.stage_engine(variant.id, engine_id) as folder:
            for child in Path(winner["folder"]).iterdir():
                shutil.move(str(child), folder / child.name)
            backend = backend_for(winner["backend"])
            record, predictor = _reload(backend, folder, winner, variant.id, engine_id, ctx)
            record.auto = {"chose": f"{winner['backend']}-{winner['precision']}", "why": winner["why"],
                           "trials": [{k: v for k, v in t.items() if k != "folder"} for t in trials]}
            run, metrics, rows = measure(ctx, record, predictor, evaluation, variant, log=log,
                                         reference=reference)   # the same model and texts: computed once
            write_reports(folder, record)
        store.add_engine(record, run, metrics, rows)
    return engine_id


def _trial(ctx: Any, work: Path, name: str, precision: str, variant_id: str, sample: list[str],
           reference: np.ndarray, refs: np.ndarray, log) -> tuple[dict, Any]:
    """Build one candidate and check its parity: (trial, predictor or None)."""
    folder = work / f"trial-{name}-{precision}"
    folder.mkdir()
    trial: dict[str, Any] = {"backend": name, "precision": precision, "folder": str(folder)}
    user_options = ctx.options
    ctx.options = {**AUTO_OPTIONS.get(name, {}), **user_options}
    try:
        record, predictor = build_into(backend_for(name), ctx, folder, precision, variant_id, "trial")
        parity = parity_report(reference, predictor.logits(sample), refs)
    except Exception as exc:  # a candidate that cannot build here is skipped, and the reason kept
        log(f"auto: {name}-{precision} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return {**trial, "error": f"{type(exc).__name__}: {exc}"[:300], "passed": False}, None
    finally:
        ctx.options = user_options
    trial.update(options=record.options, passed=parity["passed"], agreement=parity["agreement"],
                 accuracy_delta=parity["accuracy_delta"])
    log(f"auto: {name}-{precision}: agreement {parity['agreement']:.3f} -> "
        f"{'passes' if parity['passed'] else 'fails'} parity")
    return trial, predictor


def _time_rounds(built: list[tuple[dict, Any]], ctx: Any, log) -> None:
    """p50 at batch 1 and 32 of every passing candidate, alternating over rounds; medians into the trials."""
    timed = [(trial, predictor) for trial, predictor in built if trial.get("passed")]
    seen: dict[int, dict[int, list[float]]] = {id(trial): {1: [], 32: []} for trial, _ in timed}
    for _ in range(ROUNDS):
        for trial, predictor in list(timed):
            try:
                cells = latency_report(predictor, ctx.tokenizer, batches=(1, 32), seqs=(ctx.max_length,),
                                       budget_s=ROUND_BUDGET_S)["cells"]
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot run here is dropped, not fatal
                log(f"auto: {trial['backend']}-{trial['precision']} dropped: it failed while timed: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                trial.update(passed=False, error=f"timing: {type(exc).__name__}: {exc}"[:300])
                timed = [t for t in timed if t[0] is not trial]
                continue
            for cell in cells:
                seen[id(trial)][cell["batch"]].append(cell["p50_ms"])
    for trial, _ in timed:
        b1, b32 = (float(np.median(seen[id(trial)][b])) for b in (1, 32))
        trial.update(p50_ms_b1=b1, p50_ms_b32=b32, score_ms=math.sqrt(b1 * b32))
        log(f"auto: {trial['backend']}-{trial['precision']}: b1 {b1:.1f} ms, b32 {b32:.1f} ms "
            f"(median of {ROUNDS} alternating rounds)")


def _choose(trials: list[dict]) -> dict:
    passing = [t for t in trials if t.get("passed")]
    if not passing:
        from hub.errors import UserError

        raise UserError("auto: no candidate engine passed parity; see the log above, or build one by hand with --backend")
    best = min(passing, key=lambda t: t["score_ms"])
    rest = sorted((t for t in passing if t is not best), key=lambda t: t["score_ms"])
    runner_up = f"; next {rest[0]['backend']}-{rest[0]['precision']} at {rest[0]['score_ms']:.1f} ms" if rest else ""
    best["why"] = (f"fastest of {len(passing)} passing candidates: geometric mean of b1/b32 p50 "
                   f"{best['score_ms']:.1f} ms{runner_up}")
    return best


def _reload(backend: Any, folder: Path, winner: dict, variant_id: str, engine_id: str, ctx: Any):
    from hub.engines.base import EngineRecord

    record = EngineRecord(id=engine_id, variant_id=variant_id, backend=winner["backend"],
                          precision=winner["precision"], options=winner["options"], machine=backend.machine(),
                          max_length=ctx.max_length)
    return record, backend.load(folder, record, ctx.tokenizer, ctx.labels)
