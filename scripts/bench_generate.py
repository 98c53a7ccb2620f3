#!/usr/bin/env python
"""Generation engines against transformers' ``pipeline``, in one run, on the same chat prompts.

The baseline is what a user does without evalhub: ``pipeline("text-generation", model=<fp32
model>, tokenizer=...)``, greedy, on torch fp32, at batch 1 and at batch 8 (the pipeline pads
on the left for a decoder-only model). The candidates are evalhub's generation engines built
through their backends from the same model folder (default: the ``smollm2`` alias, converted
once into ``$EVALHUB_HOME/cache/models`` or ``./.evalhub/cache/models``; ``--model PATH`` for
another): torch fp32 (the reference of the ROUGE-L deltas), torch bf16, and onnxruntime-genai
int4, int8 and fp32.

Prompts are the first ``--prompts`` conversations of the support-chat test split without their
last (assistant) turn, which is the reference answer. Per engine and batch size, every round
generates ``--max-new-tokens`` (64) greedily for every prompt; rounds alternate (A B C, A B C)
because timings drift several-fold when another process shares the cores, and the median over
rounds is reported. Tokens are counted the same way for every entry, by tokenizing its decoded
output, so the pipeline (which returns text) and the engines are measured alike. Time to first
token is the median wall time of a one-new-token call per prompt at batch 1 (the same call on
every entry). ROUGE-L (and chrF) are those of each entry's batch-1 greedy outputs against the
references. ``--threads`` (default: every usable core) is given to torch and to onnxruntime
(``intra_op_num_threads`` in each built ``genai_config.json``) alike. onnxruntime-genai engines
run one prompt at a time (see ``tasks/text_generation/engines.py``), so their batch-8 figure is
eight batch-1 generations.

The printed table gives tokens/s at batch 1 and 8 as ratios to the pipeline, and the ROUGE-L
delta to evalhub torch fp32 in points; then the target line (best engine >= 5x torch fp32
tokens/s at batch 1 with ROUGE-L within one point). The baselines come with evalhub's onnx
extra; one command installs everything the script needs::

    .venv/bin/pip install -e '.[onnx]' && bash scripts/setup.sh    # setup.sh: the smollm2 GGUF
    .venv/bin/python scripts/bench_generate.py --prompts 8 --rounds 2 --json bench_generate.json
    .venv/bin/python scripts/bench_generate.py --quick --model PATH          # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BASELINE = "pipeline torch-fp32 (baseline)"
REFERENCE = "evalhub torch-fp32"
CANDIDATES = [("torch", "fp32"), ("torch", "bf16"), ("onnxruntime", "int4"), ("onnxruntime", "int8"),
              ("onnxruntime", "fp32")]
BATCHES = (1, 8)
TARGET_SPEEDUP, TARGET_ROUGE_POINTS = 5.0, 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="smollm2", help="the smollm2 alias (default) or a saved causal LM folder")
    p.add_argument("--home", help="store whose cache/models holds the converted smollm2 "
                                  "(default: $EVALHUB_HOME or ./.evalhub)")
    p.add_argument("--prompts", type=int, default=16, help="support-chat test prompts (default 16)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="new tokens per prompt (default 64)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds, median reported (default 3)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="threads for torch and onnxruntime alike (default: every usable core)")
    p.add_argument("--quick", action="store_true", help="2 prompts, 8 new tokens, 1 round: a smoke run")
    p.add_argument("--json", type=Path, help="write all figures to this file")
    args = p.parse_args(argv)
    if args.prompts < 1 or args.max_new_tokens < 1 or args.rounds < 1 or args.threads < 1:
        p.error("--prompts, --max-new-tokens, --rounds and --threads must be >= 1")
    if args.quick:
        args.prompts, args.max_new_tokens, args.rounds = min(args.prompts, 2), min(args.max_new_tokens, 8), 1
    return args


# -- model and data -----------------------------------------------------------------------------------
def model_folder(name: str, home: str | None) -> Path:
    from tasks.text_generation.model import resolve_causal_lm

    home_dir = Path(home or os.environ.get("EVALHUB_HOME") or ".evalhub")
    return Path(resolve_causal_lm(name, home_dir / "cache" / "models", log=print))


def chat_prompts(n: int) -> tuple[list[list[dict]], list[str]]:
    """The first ``n`` support-chat test conversations without their answer, and the answers."""
    from tasks.text_generation.data import GenDataConfig, load_chat_data

    rows = load_chat_data(GenDataConfig(source="support-chat")).splits["test"][:n]
    return [r["messages"][:-1] for r in rows], [r["messages"][-1]["content"] for r in rows]


# -- entries: name -> generate(prompts, batch, max_new_tokens) -> texts --------------------------------
def pipeline_entry(model: Any, tokenizer: Any) -> Callable:
    """transformers' text-generation pipeline, greedy, as its documentation shows it."""
    import copy

    from transformers import pipeline

    tok = copy.deepcopy(tokenizer)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    pipe = pipeline("text-generation", model=model, tokenizer=tok)
    greedy = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None,
              "pad_token_id": tok.pad_token_id}

    def run(prompts: list, batch: int, new: int) -> list[str]:
        out = pipe(prompts, batch_size=batch, max_new_tokens=new, return_full_text=False, **greedy)
        return [o[0]["generated_text"] for o in out]
    return run


def engine_entry(backend_name: str, precision: str, model: Any, tokenizer: Any, source: Path, work: Path,
                 threads: int, context: int) -> Callable:
    """An evalhub engine built and loaded through its backend, as ``evalhub build-engine`` does."""
    predictor = engine_predictor(backend_name, precision, model, tokenizer, source, work, threads, context)

    def run(prompts: list, batch: int, new: int) -> list[str]:
        predictor.batch_size = batch
        return predictor.generate(prompts, new)
    return run


def engine_predictor(backend_name: str, precision: str, model: Any, tokenizer: Any, source: Path, work: Path,
                     threads: int, context: int) -> Any:
    """The generation predictor of an engine built through its backend into ``work``."""
    from hub.engines.base import EngineRecord
    from tasks.text_generation.engines import GENERATION_ENGINES, GenBuildContext

    backend = GENERATION_ENGINES.get(backend_name)()
    backend.check(precision)
    folder = work / f"{backend_name}-{precision}"
    folder.mkdir(parents=True)
    ctx = GenBuildContext(model=model, tokenizer=tokenizer, max_length=context, work_dir=work / "ctx",
                          source_folder=source)
    options = backend.build(ctx, folder, precision) or {}
    if backend_name == "onnxruntime":
        set_genai_threads(folder / "genai" / "genai_config.json", threads)
    record = EngineRecord(id=f"bench-{backend_name}-{precision}", variant_id="bench", backend=backend_name,
                          precision=precision, options=dict(options), max_length=context)
    return backend.load(folder, record, tokenizer, [])


def set_genai_threads(config_path: Path, threads: int) -> None:
    """Give onnxruntime the same thread count as torch (the builder writes no such setting)."""
    from hub.fsutil import write_json_atomic

    config = json.loads(config_path.read_text(encoding="utf-8"))
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = int(threads)
    options["inter_op_num_threads"] = 1
    write_json_atomic(config_path, config)


def build_entries(model: Any, tokenizer: Any, source: Path, work: Path, threads: int,
                  context: int) -> dict[str, dict]:
    entries = {BASELINE: _entry("baseline", lambda: pipeline_entry(model, tokenizer))}
    for backend_name, precision in CANDIDATES:
        entries[f"evalhub {backend_name}-{precision}"] = _entry(
            "evalhub", lambda b=backend_name, p=precision: engine_entry(b, p, model, tokenizer, source, work,
                                                                        threads, context))
    return entries


def _entry(kind: str, make: Callable) -> dict:
    start = time.perf_counter()
    try:
        run, error = make(), None
    except Exception as exc:   # an engine that cannot be built here is reported, not fatal
        run, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return {"kind": kind, "run": run, "error": error, "build_s": time.perf_counter() - start,
            "tokens_per_s": {b: [] for b in BATCHES}, "ttft_ms": [], "outputs": None}


# -- measuring ----------------------------------------------------------------------------------------
def count_tokens(tokenizer: Any, texts: list[str]) -> int:
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def measure(entries: dict[str, dict], tokenizer: Any, prompts: list, new: int, rounds: int) -> None:
    """Alternating rounds: each round runs every entry once per batch size, then its TTFT."""
    live = {k: e for k, e in entries.items() if e["run"] is not None}
    for entry in live.values():     # warm-up: first-call allocations and graph set-up, untimed
        entry["run"](prompts[:1], 1, 2)
    for _ in range(rounds):
        for batch in BATCHES:
            for entry in live.values():
                start = time.perf_counter()
                texts = entry["run"](prompts, batch, new)
                seconds = time.perf_counter() - start
                entry["tokens_per_s"][batch].append(count_tokens(tokenizer, texts) / seconds)
                if batch == 1 and entry["outputs"] is None:
                    entry["outputs"] = texts
        for entry in live.values():
            for prompt in prompts:
                start = time.perf_counter()
                entry["run"]([prompt], 1, 1)
                entry["ttft_ms"].append((time.perf_counter() - start) * 1000)


def summarise(entries: dict[str, dict], references: list[str], meta: dict) -> dict:
    from tasks.text_generation.gen_reports import text_scores

    rows = {}
    for name, e in entries.items():
        row: dict[str, Any] = {"kind": e["kind"], "error": e["error"], "build_s": e["build_s"]}
        if e["error"] is None:
            for b in BATCHES:
                row[f"tokens_per_s_b{b}"] = statistics.median(e["tokens_per_s"][b])
                row[f"tokens_per_s_b{b}_rounds"] = e["tokens_per_s"][b]
            row["ttft_ms_b1"] = statistics.median(e["ttft_ms"])
            row |= text_scores(e["outputs"], references)
            row["outputs"] = e["outputs"]
        rows[name] = row
    result = {**meta, "baseline": BASELINE, "reference": REFERENCE, "engines": rows}
    result["ratios"], result["target"] = ratios_and_target(rows)
    return result


def ratios_and_target(rows: dict[str, dict]) -> tuple[dict, dict]:
    """tokens/s over the pipeline's per batch, ROUGE-L delta (points) to evalhub torch fp32, and
    the target: the fastest engine at batch 1 whose ROUGE-L is within one point of torch fp32."""
    base, ref = rows.get(BASELINE, {}), rows.get(REFERENCE, {})
    ratios: dict[str, dict] = {}
    for name, row in rows.items():
        if row.get("error") is not None:
            continue
        r: dict[str, Any] = {}
        for b in BATCHES:
            key = f"tokens_per_s_b{b}"
            r[f"vs_pipeline_b{b}"] = row[key] / base[key] if base.get(key) else None
            r[f"vs_torch_fp32_b{b}"] = row[key] / ref[key] if ref.get(key) else None
        r["rougeL_delta_points"] = 100 * (row["rougeL"] - ref["rougeL"]) if "rougeL" in ref else None
        ratios[name] = r
    ok = [n for n, r in ratios.items() if rows[n]["kind"] == "evalhub" and n != REFERENCE
          and r["vs_torch_fp32_b1"] is not None and r["rougeL_delta_points"] >= -TARGET_ROUGE_POINTS]
    best = max(ok, key=lambda n: ratios[n]["vs_torch_fp32_b1"], default=None)
    fastest = max((n for n, r in ratios.items() if rows[n]["kind"] == "evalhub" and n != REFERENCE
                   and r["vs_torch_fp32_b1"] is not None), key=lambda n: ratios[n]["vs_torch_fp32_b1"], default=None)
    target = {"speedup": TARGET_SPEEDUP, "rouge_points": TARGET_ROUGE_POINTS, "engine": best,
              "fastest_engine": fastest,
              "speedup_b1": ratios[best]["vs_torch_fp32_b1"] if best else None,
              "met": bool(best and ratios[best]["vs_torch_fp32_b1"] >= TARGET_SPEEDUP)}
    return ratios, target


def print_result(result: dict) -> None:
    rows, ratios = result["engines"], result["ratios"]
    print(f"\n== {result['model']}: {result['prompts']} prompts, {result['max_new_tokens']} new tokens, "
          f"{result['rounds']} round(s), {result['threads']} thread(s)")
    print(f"{'entry':<34} {'b1 tok/s':>9} {'x pipe':>7} {'b8 tok/s':>9} {'x pipe':>7} {'ttft ms':>8} "
          f"{'ROUGE-L':>8} {'d pts':>6} {'chrF':>6}")
    for name, row in rows.items():
        if row["error"]:
            print(f"{name:<34} failed: {row['error']}")
            continue
        r = ratios[name]
        cells = "".join(f" {row[f'tokens_per_s_b{b}']:>9.1f} {_x(r[f'vs_pipeline_b{b}']):>7}" for b in BATCHES)
        delta = f"{r['rougeL_delta_points']:>+6.1f}" if r["rougeL_delta_points"] is not None else "     -"
        print(f"{name:<34}{cells} {row['ttft_ms_b1']:>8.1f} {100 * row['rougeL']:>8.1f} {delta} "
              f"{100 * row['chrf']:>6.1f}")
    t = result["target"]
    verdict = "MET" if t["met"] else "NOT MET"
    if t["engine"]:
        detail = f"{t['engine']} at {t['speedup_b1']:.2f}x torch fp32 b1 tokens/s"
    else:
        detail = "no engine keeps ROUGE-L within the bound"
    if t["fastest_engine"] and t["fastest_engine"] != t["engine"]:
        f = t["fastest_engine"]
        detail += (f"; fastest {f} is {ratios[f]['vs_torch_fp32_b1']:.2f}x at "
                   f"{ratios[f]['rougeL_delta_points']:+.1f} ROUGE-L points")
    print(f"target: best engine >= {TARGET_SPEEDUP:g}x torch fp32 tokens/s at b1 with ROUGE-L within "
          f"{TARGET_ROUGE_POINTS:g} point: {verdict} ({detail})")


def _x(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "-"


def run_bench(args: argparse.Namespace) -> dict:
    import torch

    from tasks.text_generation.model import load_causal_lm

    torch.set_num_threads(args.threads)
    source = model_folder(args.model, args.home)
    model, tokenizer = load_causal_lm(str(source), dtype=torch.float32)
    prompts, references = chat_prompts(args.prompts)
    context = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
    meta = {"model": args.model, "source": str(source), "prompts": len(prompts),
            "max_new_tokens": args.max_new_tokens, "rounds": args.rounds, "threads": args.threads,
            "torch": torch.__version__, "cpus_usable": len(os.sched_getaffinity(0))}
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        entries = build_entries(model, tokenizer, source, Path(tmp), args.threads, context)
        measure(entries, tokenizer, prompts, args.max_new_tokens, args.rounds)
    return summarise(entries, references, meta)


def main(argv: list[str] | None = None) -> int:
    from hub.errors import UserError

    args = parse_args(argv)
    try:
        result = run_bench(args)
    except UserError as exc:
        print(f"bench_generate: {exc}", file=sys.stderr)
        return 2
    print_result(result)
    if args.json:
        from hub.fsutil import write_json_atomic

        write_json_atomic(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
