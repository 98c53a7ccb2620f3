"""`evalhub demo`: the main job on the embedded default (MiniLM on BBC News).

Fine-tunes two variants (full and LoRA) on a small budget, evaluates both on the test
split, builds the fastest engine of the LoRA variant that passes parity (``--backend auto``)
and runs every scorecard on it (the ``demo`` suite: ``full`` with 20 explained examples, so
the app's Inspect tab has flips, counterfactuals and attributions to show), prints the
leaderboard, then serves the app (whose demo answers from that engine). Everything comes
from installed packages; nothing is downloaded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).parent / "examples"
DEMO_CONFIGS = ("news-topics-full.yaml", "news-topics-lora.yaml")


def run_demo(store: Any, *, serve: bool = True, port: int = 7860, json_out: bool = False,
             configs: tuple[str, ...] = DEMO_CONFIGS, engine_for: int | None = 1, engine_suite: str = "demo") -> dict:
    from evaluators.base import load_suite
    from evaluators.runner import run_suite
    from hub.registries import TASKS
    from hub.report import format_rows
    from hub.run_config import load_run_config

    say = (lambda *a: None) if json_out else print
    if engine_for is not None and any(name == "robustness" for name, _ in load_suite(engine_suite).steps()):
        from evaluators.robustness.wordnet import get_wordnet

        get_wordnet()   # missing WordNet data fails now, with the install command, not after training
    made: dict[str, Any] = {"variants": [], "runs": []}
    start = time.perf_counter()
    for name in configs:
        cfg = load_run_config(EXAMPLES / name)
        say(f"\n== {cfg.name}: {cfg.peft.method if cfg.peft.method != 'none' else 'full fine-tuning'} "
            f"of {cfg.model.name} on {cfg.data.source}, {cfg.train.max_steps} steps")
        variant_id = TASKS.get(cfg.task).train(cfg, store)
        run_id = run_suite(store, variant_id, cfg.eval.suite, split=cfg.eval.split,
                           batch_size=cfg.eval.batch_size, bootstrap=cfg.eval.bootstrap,
                           log=say)
        say(f"variant {variant_id}\nrun {run_id}")
        made["variants"].append(variant_id)
        made["runs"].append(run_id)
    if engine_for is not None:
        from hub.engines.build import build_engine

        say(f"\n== building the fastest engine of {made['variants'][engine_for]} that passes parity (--backend auto)")
        made["engine"] = build_engine(store, made["variants"][engine_for], "auto", "fp32", log=say)
        say(f"\n== every scorecard on engine {made['engine']} (suite {engine_suite})")
        made["runs"].append(run_suite(store, made["variants"][engine_for], engine_suite, engine=made["engine"],
                                      log=say))
        say(f"engine {made['engine']}")
    made["seconds"] = round(time.perf_counter() - start, 1)
    rows = [r for r in store.leaderboard() if r["variant"] in made["variants"] and r["split"] == "test"]
    made["leaderboard"] = rows
    say(f"\n== leaderboard (test split), {made['seconds']} s\n" + format_rows(rows, "table"))
    if serve:
        from hub.ui.app import launch

        say("\n== serving the hub app (Ctrl-C to stop)")
        launch(store, port=port)
    return made
