"""`evalhub demo`: the main job on the embedded default (MiniLM on BBC News).

The app comes up first (unless ``--no-serve``), with a panel showing each stage as it runs,
and rows appear on its leaderboard as they land. Then, for each demo variant (full
fine-tuning and LoRA): train it, score its torch model (the ``default`` suite), build the
fastest engine that passes parity (``--backend auto`` over ``DEMO_CANDIDATES``) and run every
scorecard on that engine (the ``demo`` suite: ``full`` on smaller samples), so every variant is scored on
every axis in the form it would be served. Then it prints the leaderboard and keeps serving.
Everything comes from installed packages; nothing is downloaded.

Warnings a user cannot act on (export tracer warnings, peft's notes, transformers' advice)
go to a log file in the store (``logs/demo-<time>.log``), not the console.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

EXAMPLES = Path(__file__).parent / "examples"
DEMO_CONFIGS = ("news-topics-full.yaml", "news-topics-lora.yaml")
# The auto search of the demo: the candidates that have won on 2-core x86 CPUs (int8 on both
# runtimes, OpenVINO bf16); the others (torch bf16/fp32, ORT fp32) each cost a build, a parity
# pass and timing rounds and have not won here. `evalhub build-engine V --backend auto` tries all.
DEMO_CANDIDATES = ["openvino-int8", "openvino-bf16", "onnxruntime-int8"]
NOISY_LOGGERS = ("transformers", "peft", "accelerate", "torch", "nncf", "openvino", "onnxruntime", "datasets")


@contextlib.contextmanager
def quiet_console(log_path: Path) -> Iterator[Path]:
    """Python warnings and library log records go to ``log_path`` instead of the console."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("py.warnings", *NOISY_LOGGERS)]
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in loggers]
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    logging.captureWarnings(True)
    with warnings.catch_warnings():
        warnings.simplefilter("default")   # each warning once per place, into the file
        for lg in loggers:
            lg.handlers, lg.propagate = [handler], False
        try:
            yield log_path
        finally:
            logging.captureWarnings(False)
            for lg, handlers, propagate in saved:
                lg.handlers, lg.propagate = handlers, propagate
            hf_logging.enable_default_handler()
            handler.close()


def plan(configs: tuple[str, ...], engine_suite: str) -> tuple[list, list[tuple[str, str]]]:
    """The run configs and the progress stages: per variant, train, torch score, engine, scorecards."""
    from hub.run_config import load_run_config

    cfgs, stages = [], []
    for name in configs:
        cfg = load_run_config(EXAMPLES / name)
        how = "full fine-tuning" if cfg.peft.method == "none" else cfg.peft.method
        cfgs.append(cfg)
        stages += [(f"train:{cfg.name}", f"train **{cfg.name}** ({how}, {cfg.train.max_steps} steps)"),
                   (f"score:{cfg.name}", f"score its torch model (`{cfg.eval.suite}` suite)"),
                   (f"engine:{cfg.name}", "find its fastest engine that passes parity (`--backend auto`)"),
                   (f"suite:{cfg.name}", f"every scorecard on that engine (`{engine_suite}` suite)")]
    return cfgs, stages


def _check_wordnet(engine_suite: str) -> None:
    from hub.suites import load_suite

    if any(name == "robustness" for name, _ in load_suite(engine_suite).steps()):
        from evaluators.robustness.wordnet import get_wordnet

        get_wordnet()   # missing WordNet data fails now, with the install command, not after training


def run_demo(store: Any, *, serve: dict | None = None, json_out: bool = False,
             configs: tuple[str | Path, ...] = DEMO_CONFIGS, engines: bool = True, engine_suite: str = "demo",
             block: bool = True) -> dict:
    """Run the demo into ``store``; ``serve``: the options of :func:`hub.ui.app.launch` (port,
    server_name, auth, config, share) to serve the app from the start, or None for console only.
    ``configs``: run configs (names under ``hub/examples`` or paths); ``engines``: build each
    variant's auto engine and score it on every axis; ``block``: keep serving after the run
    (else the running app is returned as ``made["app"]``, for the caller to close)."""
    from hub.ui.progress import Progress

    say = (lambda *a: None) if json_out else print
    if engines:
        _check_wordnet(engine_suite)
    cfgs, stages = plan(configs, engine_suite)
    if not engines:
        stages = [s for s in stages if s[0].split(":")[0] in ("train", "score")]
    progress = Progress.of(stages)
    app = None
    if serve is not None:
        from hub.ui.app import launch

        app = launch(store, prevent_thread_lock=True, progress=progress, **serve)
        say(f"the app is up at {app.local_url}: it shows each stage below as it runs, and the "
            "leaderboard fills in as results land")
    log_path = store.root / "logs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"
    made: dict[str, Any] = {"variants": [], "runs": [], "engines": [], "log": str(log_path)}
    start = time.perf_counter()
    try:
        with quiet_console(log_path):
            for cfg in cfgs:
                _one_variant(store, cfg, progress, made, say, engines=engines, engine_suite=engine_suite)
    except BaseException as exc:
        progress.finish(f"stopped: {type(exc).__name__}")
        if app is not None:
            app.close()
        raise
    made["seconds"] = round(time.perf_counter() - start, 1)
    progress.finish(f"All {len(cfgs)} variants scored in {made['seconds'] / 60:.1f} min.")
    _report(store, made, say)
    if app is not None and block:
        say(f"\n== serving the hub app at {app.local_url} (Ctrl-C to stop)")
        app.block_thread()
    elif app is not None:
        made["app"] = app
    return made


def _one_variant(store: Any, cfg: Any, progress: Any, made: dict, say: Any, *, engines: bool,
                 engine_suite: str) -> None:
    """Train one variant, score its torch model, then its auto engine on every axis."""
    from evaluators.runner import run_suite
    from hub.registries import TASKS

    key = cfg.name
    say(f"\n== {progress._stage(f'train:{key}').title.replace('**', '')} of {cfg.model.name} on {cfg.data.source}")
    progress.start(f"train:{key}", "reading the data")
    total = cfg.train.max_steps

    def on_step(step: int, logs: dict) -> None:
        progress.update(f"train:{key}", f"step {step}/{total}, loss {logs['train/loss']:.3f}"
                        + (f", validation accuracy {logs['validation/accuracy']:.3f}"
                           if "validation/accuracy" in logs else ""))

    variant_id = TASKS.get(cfg.task).train(cfg, store, on_step=on_step)
    progress.done(f"train:{key}", f"variant `{variant_id}`")
    made["variants"].append(variant_id)
    say(f"variant {variant_id}")

    progress.start(f"score:{key}")
    run_id = run_suite(store, variant_id, cfg.eval.suite, split=cfg.eval.split, batch_size=cfg.eval.batch_size,
                       bootstrap=cfg.eval.bootstrap, log=say, on_evaluator=_evaluator_line(progress, f"score:{key}"))
    made["runs"].append(run_id)
    progress.done(f"score:{key}", _headline(store, run_id))
    say(f"run {run_id}")
    if not engines:
        return

    from hub.engines.build import build_engine

    progress.start(f"engine:{key}", "measuring each backend and precision")
    say(f"\n== the fastest engine of {variant_id} that passes parity (--backend auto)")

    def engine_log(line: str) -> None:
        say(line)
        progress.update(f"engine:{key}", line)

    from hub.engines.auto import available_candidates
    from hub.engines.steps import task_of

    here = {f"{b}-{p}" for b, p in available_candidates(task_of(store.get_variant(variant_id)))}
    candidates = [c for c in DEMO_CANDIDATES if c in here] or None   # none installed: every one there is
    engine_id = build_engine(store, variant_id, "auto", "fp32", log=engine_log,
                             options={"candidates": candidates} if candidates else None)
    made["engines"].append(engine_id)
    progress.done(f"engine:{key}", f"engine `{engine_id}`")
    say(f"engine {engine_id}")

    progress.start(f"suite:{key}")
    say(f"\n== every scorecard on engine {engine_id} (suite {engine_suite})")
    run_id = run_suite(store, variant_id, engine_suite, engine=engine_id, log=say,
                       on_evaluator=_evaluator_line(progress, f"suite:{key}"))
    made["runs"].append(run_id)
    progress.done(f"suite:{key}", _headline(store, run_id))


def _evaluator_line(progress: Any, key: str) -> Any:
    return lambda name, index, count: progress.update(key, f"evaluator {index + 1} of {count}: {name}")


def _headline(store: Any, run_id: str) -> str:
    values = {m["metric"]: m["value"] for m in store.metrics(run_id)}
    shown = [f"{name} {values[name]:.3f}" for name in ("accuracy", "flip_rate", "attack_success_rate")
             if name in values]
    return ", ".join(shown) or f"run `{run_id}`"


def _report(store: Any, made: dict, say: Any) -> None:
    from hub.report import format_rows

    rows = [r for r in store.leaderboard() if r["variant"] in made["variants"] and r["split"] == "test"]
    made["leaderboard"] = rows
    say(f"\n== leaderboard (test split), {made['seconds']} s\n" + format_rows(rows, "table"))
    say(f"warnings and library notes: {made['log']}")
