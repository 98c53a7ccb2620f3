#!/usr/bin/env python
"""The generation scorecards on SmolLM2: their time on its fastest engine against the torch model.

Baseline: evalhub's torch fp32 predictor of SmolLM2-135M-Instruct as shipped (the reference every
generation engine is compared with). Candidate: the onnxruntime-genai int4 engine built from it
(``--engine``; int4 is what ``--backend auto`` keeps for the shipped model: ROUGE-L within the
bound). Every generation scorecard runs on both, in one process, the same options and prompts:
``refusal`` (the first ``--redteam``/``--benign`` prompts of each set), ``toxicity`` and ``pii``
of the answers, ``generation_fairness`` (``--fairness-prompts`` built-in identity prompts, the
first of each axis in turn), ``generation_robustness`` and ``generation_explain`` (ablation on the
predictor, IG always on the torch model) on the first ``--prompts`` support-chat test prompts.
Each scorecard runs once per predictor (A then B, alternating the order per scorecard: a round
takes minutes, so the drift of a shared machine is spread rather than repeated away); the table
gives seconds, the speed-up of the engine, and each scorecard's headline scores on both, so a
reader sees where the served engine's scorecard differs from the model's. ``--threads`` (every
usable core by default) is given to torch and onnxruntime alike. One command installs it all::

    .venv/bin/pip install -e '.[onnx]' && bash scripts/setup.sh    # setup.sh: the smollm2 GGUF
    .venv/bin/python scripts/bench_gen_scorecards.py --json bench_gen_scorecards.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HEADLINES = {
    "refusal": ["refusal_rate", "over_refusal_rate"],
    "toxicity": ["output_toxicity_mean", "output_toxicity_max"],
    "pii": ["output_pii_rate"],
    "generation_fairness": ["fairness_sentiment_gap", "fairness_toxicity_gap", "fairness_sentiment_delta"],
    "generation_robustness": ["clean_rougeL", "rougeL_drop", "chrf_drop", "output_similarity"],
    "generation_explain": ["comprehensiveness/ablation", "sufficiency/ablation", "comprehensiveness/ig",
                           "tau_ablation/ig", "ig_completeness_gap"],
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="a causal LM folder or alias (default smollm2)")
    parser.add_argument("--home", default=None, help="store folder whose model cache holds the converted alias")
    parser.add_argument("--engine", default="onnxruntime:int4", help="backend:precision of the candidate")
    parser.add_argument("--prompts", type=int, default=16, help="support-chat test prompts (toxicity, pii, "
                                                                "robustness, explanations)")
    parser.add_argument("--redteam", type=int, default=24, help="red-team prompts for refusal")
    parser.add_argument("--benign", type=int, default=24, help="benign prompts for over-refusal")
    parser.add_argument("--fairness-prompts", type=int, default=10, help="built-in identity prompts")
    parser.add_argument("--explain-examples", type=int, default=3, help="prompts explained")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--only", nargs="*", default=list(HEADLINES), help="scorecards to run")
    parser.add_argument("--json", default=None, help="write the results here")
    return parser.parse_args(argv)


def subsets(args: argparse.Namespace, work: Path) -> dict[str, str]:
    """JSONL files with the first N prompts of each built-in set (fairness: round-robin over axes)."""
    from evaluators.safety.refusal import PROMPTS_DIR

    out = {}
    for name, n in (("redteam", args.redteam), ("benign", args.benign)):
        lines = (PROMPTS_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (work / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[name] = str(work / f"{name}.jsonl")
    rows = [json.loads(line) for line in (PROMPTS_DIR / "identity.jsonl").read_text(encoding="utf-8").splitlines()]
    by_axis: dict[str, list] = {}
    for row in rows:
        by_axis.setdefault(row["axis"], []).append(row)
    picked = [r for k in range(max(map(len, by_axis.values()))) for axis in by_axis.values() if k < len(axis)
              for r in [axis[k]]][:args.fairness_prompts]
    (work / "identity.jsonl").write_text("\n".join(json.dumps(r) for r in picked) + "\n", encoding="utf-8")
    out["identity"] = str(work / "identity.jsonl")
    return out


def scorecards(args: argparse.Namespace, files: dict[str, str]) -> dict[str, tuple[str, dict]]:
    new = {"max_new_tokens": args.max_new_tokens}
    return {
        "refusal": ("refusal", {"redteam": files["redteam"], "benign": files["benign"], "generate_kwargs": new}),
        "toxicity": ("toxicity", {"outputs": True, "generate_kwargs": new}),
        "pii": ("pii", {"outputs": True, "generate_kwargs": new}),
        "generation_fairness": ("generation_fairness", {"prompts": files["identity"], **new}),
        "generation_robustness": ("generation_robustness", {"max_examples": None, **new}),
        "generation_explain": ("generation_explain", {"max_examples": args.explain_examples}),
    }


def run_one(name: str, options: dict, predictor: Any, prompts: list, refs: list, context: Any) -> dict:
    from hub.registries import EVALUATORS

    evaluator = EVALUATORS.get(name)()
    start = time.perf_counter()
    out = evaluator.evaluate(predictor, prompts, refs, [], seed=0, context=context, **options)
    return {"seconds": time.perf_counter() - start, "metrics": {m.name: m.value for m in out.metrics}}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import evaluators  # noqa: F401 - registers the evaluators
    from evaluators.base import EvalContext
    from scripts.bench_generate import chat_prompts, engine_predictor, model_folder
    from tasks.text_generation.predict import GenerationPredictor

    torch.set_num_threads(args.threads)
    source = model_folder(args.model, args.home)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    prompts, refs = chat_prompts(args.prompts)
    reference = GenerationPredictor(model, tokenizer, max_new_tokens=args.max_new_tokens)
    backend, precision = args.engine.split(":")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        engine = engine_predictor(backend, precision, model, tokenizer, source, work / "engine", args.threads,
                                  int(model.config.max_position_embeddings))
        engine.max_new_tokens = args.max_new_tokens
        context = EvalContext(store=None, variant=SimpleNamespace(id=str(args.model), task="text-generation"),
                              engine=engine.engine, log=lambda _m: None, _torch=reference)
        contestants = {"torch-fp32": reference, engine.engine: engine}
        results: dict[str, Any] = {"meta": {"model": str(source), "engine": engine.engine, "threads": args.threads,
                                            "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                                            "load": os.getloadavg()}, "scorecards": {}}
        plan = scorecards(args, subsets(args, work))
        for k, key in enumerate(args.only):
            name, options = plan[key]
            order = list(contestants) if k % 2 == 0 else list(contestants)[::-1]
            runs = {who: run_one(name, options, contestants[who], prompts, refs, context) for who in order}
            torch_s, engine_s = runs["torch-fp32"]["seconds"], runs[engine.engine]["seconds"]
            results["scorecards"][key] = {"torch_s": torch_s, "engine_s": engine_s, "speedup": torch_s / engine_s,
                                          "scores": {who: {m: r["metrics"].get(m) for m in HEADLINES[key]}
                                                     for who, r in runs.items()}}
            print(f"{key:24s} torch {torch_s:7.1f}s  {engine.engine} {engine_s:7.1f}s  {torch_s / engine_s:5.2f}x  "
                  + "  ".join(f"{m}={runs['torch-fp32']['metrics'].get(m, float('nan')):.3f}/"
                              f"{runs[engine.engine]['metrics'].get(m, float('nan')):.3f}" for m in HEADLINES[key]),
                  flush=True)
    total_t = sum(r["torch_s"] for r in results["scorecards"].values())
    total_e = sum(r["engine_s"] for r in results["scorecards"].values())
    results["total"] = {"torch_s": total_t, "engine_s": total_e, "speedup": total_t / total_e}
    results["meta"]["load_end"] = os.getloadavg()
    print(f"{'all scorecards':24s} torch {total_t:7.1f}s  {engine.engine} {total_e:7.1f}s  {total_t / total_e:5.2f}x "
          f"(scores: torch / engine; load {results['meta']['load'][0]:.1f} -> {results['meta']['load_end'][0]:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
