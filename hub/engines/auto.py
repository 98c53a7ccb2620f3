"""`--backend auto`: build every available candidate, keep the fastest whose parity passes.

The candidates are the task's (``Task.auto_candidates``) that can run here. Each is built
once into scratch space and checked for parity against eager fp32 torch on the whole
evaluation split (on a sample, an engine passed that then failed on the full split). The
candidates that pass are then timed with the task's figures (classification: batch 1 and 32
at the longest sequence length) in alternating rounds (A B C, A B C, …; the median of each), so that a
burst of other work on the machine cannot decide the choice by landing on one candidate's
turn (it did once, when one measurement per candidate followed its build). The winner
(lowest geometric mean of the figures) is moved into the store and measured in full;
the engine record keeps every candidate's figures and the reason for the choice.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from hub.engines.steps import backend_for, build_into, measure, new_engine_id, task_of, write_reports
from hub.store import Store

# Options auto adds per backend. torch.compile costs 30-150 s at every load on 2 cores for
# ~7% at batch 1 and nothing at batch 32 (measured here), so auto times the eager bf16 model.
AUTO_OPTIONS = {"torch": {"compile": False}}
ROUNDS, ROUND_BUDGET_S = 3, 0.2   # timing rounds, and seconds per cell in each


def available_candidates(task: Any) -> list[tuple[str, str]]:
    """The task's candidates (fastest-first guesses) whose backend can run on this machine."""
    found = []
    for name, precision in task.auto_candidates:
        backend = task.engines.get(name)()
        if backend.is_available() and precision in backend.precisions and backend.runs_here():
            found.append((name, precision))
    return found


def chosen_candidates(task: Any, names: Any) -> list[tuple[str, str]]:
    """The available candidates, or those of them named in ``--option candidates=[backend-precision, ...]``
    (UserError for a name that is not a candidate here, with what is)."""
    from hub.errors import UserError, did_you_mean, quote

    found = available_candidates(task)
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
    task = task_of(variant)
    options = dict(options or {})
    candidates = chosen_candidates(task, options.pop("candidates", None))
    store.staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.staging_dir, prefix="auto-") as work:
        ctx, evaluation = task.build_context(store, variant, Path(work), options)
        reference = task.reference(ctx, evaluation[1])
        built = [_trial(task, ctx, Path(work), name, precision, variant.id, evaluation[1], reference, log)
                 for name, precision in candidates]
        _time_rounds(task, built, ctx, log)
        trials = [trial for trial, _ in built]
        del built   # the candidates' predictors (and any device memory they hold) go before the winner loads
        winner = _choose(trials)
        engine_id = new_engine_id(winner["backend"], winner["precision"])
        log(f"auto: chose {winner['backend']}-{winner['precision']} ({winner['why']})")
        with store.stage_engine(variant.id, engine_id) as folder:
            for child in Path(winner["folder"]).iterdir():
                shutil.move(str(child), folder / child.name)
            backend = backend_for(winner["backend"], task)
            record, predictor = _reload(backend, folder, winner, variant.id, engine_id, ctx)
            record.auto = {"chose": f"{winner['backend']}-{winner['precision']}", "why": winner["why"],
                           "trials": [{k: v for k, v in t.items() if k != "folder"} for t in trials]}
            run, metrics, rows, records = measure(task, ctx, record, predictor, evaluation, variant, log=log,
                                                  reference=reference)   # the same model and inputs: computed once
            write_reports(folder, record)
        store.add_engine(record, run, metrics, rows, records)
    return engine_id


def _trial(task: Any, ctx: Any, work: Path, name: str, precision: str, variant_id: str, split: Any,
           reference: Any, log) -> tuple[dict, Any]:
    """Build one candidate and check its parity: (trial, predictor or None)."""
    folder = work / f"trial-{name}-{precision}"
    folder.mkdir()
    trial: dict[str, Any] = {"backend": name, "precision": precision, "folder": str(folder)}
    user_options = ctx.options
    ctx.options = {**AUTO_OPTIONS.get(name, {}), **user_options}
    try:
        record, predictor = build_into(backend_for(name, task), ctx, folder, precision, variant_id, "trial")
        parity = task.parity(ctx, reference, predictor, split, quick=True)
    except Exception as exc:  # a candidate that cannot build here is skipped, and the reason kept
        log(f"auto: {name}-{precision} skipped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return {**trial, "error": f"{type(exc).__name__}: {exc}"[:300], "passed": False}, None
    finally:
        ctx.options = user_options
    trial.update(options=record.options, passed=parity["passed"],
                 **{k: v for k, v in parity.items() if k in task.auto_parity_keys})
    log(f"auto: {name}-{precision}: {task.parity_line(parity)}")
    return trial, predictor


def _time_rounds(task: Any, built: list[tuple[dict, Any]], ctx: Any, log) -> None:
    """The task's timing figures of every passing candidate, alternating over rounds; medians into the trials."""
    timed = [(trial, predictor) for trial, predictor in built if trial.get("passed")]
    seen: dict[int, dict[str, list[float]]] = {id(trial): {} for trial, _ in timed}
    for _ in range(ROUNDS):
        for trial, predictor in list(timed):
            try:
                figures = task.auto_timing(predictor, ctx, budget_s=ROUND_BUDGET_S)
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot run here is dropped, not fatal
                log(f"auto: {trial['backend']}-{trial['precision']} dropped: it failed while timed: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                trial.update(passed=False, error=f"timing: {type(exc).__name__}: {exc}"[:300])
                timed = [t for t in timed if t[0] is not trial]
                continue
            for key, value in figures.items():
                seen[id(trial)].setdefault(key, []).append(value)
    for trial, _ in timed:
        medians = {key: float(np.median(values)) for key, values in seen[id(trial)].items()}
        trial.update(medians, score_ms=math.exp(np.mean([math.log(v) for v in medians.values()])))
        log(f"auto: {trial['backend']}-{trial['precision']}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in medians.items()) + f" (median of {ROUNDS} alternating rounds)")


def _choose(trials: list[dict]) -> dict:
    passing = [t for t in trials if t.get("passed")]
    if not passing:
        from hub.errors import UserError

        raise UserError("auto: no candidate engine passed parity; see the log above, or build one by hand with --backend")
    best = min(passing, key=lambda t: t["score_ms"])
    rest = sorted((t for t in passing if t is not best), key=lambda t: t["score_ms"])
    runner_up = f"; next {rest[0]['backend']}-{rest[0]['precision']} at {rest[0]['score_ms']:.1f} ms" if rest else ""
    best["why"] = (f"fastest of {len(passing)} passing candidates: geometric mean of "
                   f"{'/'.join(k for k in best if k.startswith(('p50_ms', 'ms_')))} "
                   f"{best['score_ms']:.1f} ms{runner_up}")
    return best


def _reload(backend: Any, folder: Path, winner: dict, variant_id: str, engine_id: str, ctx: Any):
    from hub.engines.base import EngineRecord

    record = EngineRecord(id=engine_id, variant_id=variant_id, backend=winner["backend"],
                          precision=winner["precision"], options=winner["options"], machine=backend.machine(),
                          max_length=ctx.max_length)
    return record, backend.load(folder, record, ctx.tokenizer, getattr(ctx, "labels", []))
