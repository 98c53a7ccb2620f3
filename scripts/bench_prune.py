#!/usr/bin/env python
"""Pruned variants against their unpruned parent, in one run: test accuracy and int8 engine latency.

The parent is the demo's MiniLM full fine-tune (``hub/examples/news-topics-full.yaml``, what
``evalhub demo`` trains first): ``--variant`` names it in ``--home``; without ``--variant`` the newest
variant named ``news-topics-full`` in ``--home`` is used, and where there is none the parent is
trained here with the demo's own config (said in the output). For each setting in ``--settings``
(``HEADS/FFN`` shares removed; default 0.2/0.2 and 0.4/0.4, plus heavier ones tried for the target)
the parent is pruned (Taylor importance) and recovered by distillation from the parent exactly as
``evalhub prune`` does, ``--recover-steps`` optimizer steps at ``--recover-lr`` (a new variant in the
store), and then:

* accuracy on the parent's test split of the torch model and of its int8 engine, beside the parent's
  torch model and int8 engine: the same split, and int8 against int8 (the served form) as well as
  fp32 against fp32;
* int8 engine latency at batch 1 and 32 (sequence ``--seq``, no padding), every engine timed in the
  same rounds, alternating, median over rounds; ratios are parent / pruned (above 1: faster).

``--models bert-base`` adds BERT-base geometry (random weights, BERT's uncased vocabulary) pruned by
magnitude without recovery: latency only, its accuracy is not measured (random weights have none);
its latency is that of any model of the pruned geometry. Engines are the int8 engine of ``--backend``
(OpenVINO + NNCF when installed, else ONNX Runtime dynamic int8), built through evalhub's backends.
The machine's load (``uptime``) is printed at start and end. Target (issue 15): a setting >= 1.3x the
unpruned int8 engine at both batch sizes with <= 1 point accuracy loss on the demo data.

    .venv/bin/python scripts/bench_prune.py --home .evalhub --json bench_prune.json
    .venv/bin/python scripts/bench_prune.py --quick     # a tiny BERT trained here: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.engines.base import BuildContext  # noqa: E402
from hub.engines.build import backend_for, build_into  # noqa: E402
from hub.engines.reports import synthetic_batch  # noqa: E402


def int8_engine(model, tokenizer, labels, calibration, work: Path, backend: str, max_length: int):
    """The ``run(inputs) -> logits`` of ``model``'s int8 engine, built by evalhub's backend."""
    folder = work / f"engine-{len(list(work.iterdir()))}"
    folder.mkdir()
    ctx = BuildContext(model=model, tokenizer=tokenizer, labels=labels, max_length=max_length,
                       calibration_texts=calibration, work_dir=folder / "ctx", options={})
    return build_into(backend_for(backend), ctx, folder / "engine", "int8", "bench", "bench")[1].run


def alternate(runs: dict[str, object], tokenizer, batches, seq: int, rounds: int, calls: int) -> dict:
    """{name: {batch: median ms}}: every round times every engine at every batch size, ``calls`` calls
    (fewer where one call takes over 0.2 s: BERT-base at batch 32), the median of each."""
    inputs = {b: synthetic_batch(tokenizer, b, seq) for b in batches}
    times: dict[str, dict[int, list[float]]] = {name: {b: [] for b in batches} for name in runs}
    per_call = {b: 0.0 for b in batches}
    for run in runs.values():   # warm-up outside the timings
        for b in batches:
            run(inputs[b])
            start = time.perf_counter()
            run(inputs[b])
            per_call[b] = max(per_call[b], time.perf_counter() - start)
    n_calls = {b: max(1, min(calls, int(0.2 / max(per_call[b], 1e-6)))) for b in batches}
    for _ in range(rounds):
        for b in batches:
            for name, run in runs.items():
                samples = []
                for _ in range(n_calls[b]):
                    start = time.perf_counter()
                    run(inputs[b])
                    samples.append(time.perf_counter() - start)
                times[name][b].append(statistics.median(samples) * 1000)
    return {name: {b: statistics.median(v) for b, v in per.items()} for name, per in times.items()}


def accuracy(run, tokenizer, texts: list[str], refs: np.ndarray, max_length: int) -> float:
    """Argmax accuracy of ``run`` (numpy inputs -> logits) over ``texts``, in batches of 32."""
    preds = []
    for start in range(0, len(texts), 32):
        enc = tokenizer(texts[start:start + 32], padding=True, truncation=True, max_length=max_length,
                        return_tensors="np")
        preds.append(np.asarray(run({k: v.astype(np.int64) for k, v in enc.items()})).argmax(-1))
    return float((np.concatenate(preds) == refs).mean())


def torch_run(model):
    def run(inputs):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()
    return run


def ratios(times: dict, name: str, base: str) -> dict[int, float]:
    return {b: times[base][b] / times[name][b] for b in times[base]}


def setting(text: str) -> tuple[float, float, str]:
    """``HEADS/FFN[:layer]`` (or one share for both) as (heads, ffn, head scope): shares removed, and
    ``:layer`` to take the head share from every layer instead of ranking heads across layers."""
    text, _, scope = text.partition(":")
    parts = text.split("/")
    try:
        heads, ffn = (float(parts[0]), float(parts[-1])) if len(parts) <= 2 else (None, None)
    except ValueError:
        heads = ffn = None
    if heads is None or not (0 <= heads < 1 and 0 <= ffn < 1) or scope not in ("", "global", "layer"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected HEADS/FFN shares in [0, 1), e.g. 0.4/0.6, or one "
                                         "share, optionally with :layer (e.g. 0.4/0.6:layer)")
    return heads, ffn, scope or "global"


def row_name(heads: float, ffn: float, scope: str = "global") -> str:
    return f"h{heads:g}-f{ffn:g}" + ("-layer" if scope == "layer" else "")


def bench_variant(store, parent_ref: str, args, work: Path) -> dict:
    """Prune + recover the parent at every setting; accuracy and int8 latency beside the parent's."""
    from evaluators.runner import load_eval_splits
    from tasks.text_classification.predict import load_model
    from tasks.text_classification.recover import prune

    parent = store.get_variant(parent_ref)
    max_length = parent.run_config.get("model", {}).get("max_length", 128)
    splits = load_eval_splits(parent, ("test", "train"))
    texts, refs = splits["test"].inputs, np.asarray(splits["test"].references)
    calibration = list(splits["train"].inputs[:128])
    model, tokenizer = load_model(store, parent)
    rows = {"parent": {"variant": parent.id, "parameters": sum(p.numel() for p in model.parameters()),
                       "train_steps": parent.train_summary.get("steps"),
                       "accuracy": accuracy(torch_run(model), tokenizer, texts, refs, max_length)}}
    runs = {"parent": int8_engine(model, tokenizer, parent.labels, calibration, work, args.backend, max_length)}
    for heads, ffn, scope in args.settings:
        start = time.perf_counter()
        vid = prune(store, parent.id, heads=heads, ffn=ffn, method=args.method, recover_steps=args.recover_steps,
                    learning_rate=args.recover_lr, head_scope=scope, show_progress=False)
        record = store.get_variant(vid)
        pruned, _ = load_model(store, record)
        name, lineage = row_name(heads, ffn, scope), record.train_summary["pruning"]
        rows[name] = {"variant": vid, "prune_and_recover_s": time.perf_counter() - start,
                      "recover_steps": record.train_summary["steps"],
                      "parameters": lineage["parameters"]["after"], "kept": lineage["parameters"]["kept"],
                      "heads_per_layer": lineage["heads_per_layer"], "intermediate_sizes": lineage["intermediate_sizes"],
                      "accuracy": accuracy(torch_run(pruned), tokenizer, texts, refs, max_length)}
        runs[name] = int8_engine(pruned, tokenizer, parent.labels, calibration, work, args.backend, max_length)
        print(f"  {name}: pruned and recovered in {rows[name]['prune_and_recover_s']:.0f} s, "
              f"torch accuracy {rows[name]['accuracy']:.4f}", flush=True)
    for name, run in runs.items():
        rows[name]["int8_accuracy"] = accuracy(run, tokenizer, texts, refs, max_length)
    times = alternate(runs, tokenizer, args.batches, min(args.seq, max_length), args.rounds, args.calls)
    for name, row in rows.items():
        row["int8_ms"] = times[name]
        row["speedup"] = ratios(times, name, "parent")
        row["accuracy_delta_points"] = 100 * (row["accuracy"] - rows["parent"]["accuracy"])
        row["int8_accuracy_delta_points"] = 100 * (row["int8_accuracy"] - rows["parent"]["int8_accuracy"])
    return {"model": f"{parent.id} ({parent.name}, {parent.base_model})", "backend": args.backend,
            "seq": min(args.seq, max_length), "test_examples": len(texts),
            "recovery": {"steps": args.recover_steps, "learning_rate": args.recover_lr, "method": args.method,
                         "temperature": 2.0, "alpha": 0.5,
                         "batch_size": (parent.run_config.get("train") or {}).get("batch_size")},
            "rows": rows}


def bench_geometry(args, work: Path) -> dict:
    """BERT-base geometry, random weights: magnitude pruning, no recovery, int8 latency only."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from hub.models import embedded_model_path
    from tasks.text_classification.prune import PruneSettings, prune_model

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=5)).eval()
    # MiniLM's tokenizer is BERT-base uncased's (the same 30,522 words): real token ids, nothing downloaded
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path("minilm"))
    labels = [f"c{i}" for i in range(5)]
    calibration = [f"news report number {i} about markets, football, film and elections " * 8 for i in range(32)]
    runs, rows = {}, {"parent": {"parameters": sum(p.numel() for p in model.parameters())}}
    runs["parent"] = int8_engine(model, tokenizer, labels, calibration, work, args.backend, args.seq)
    for heads, ffn, scope in args.settings:
        pruned, lineage = prune_model(model, PruneSettings(heads=heads, ffn=ffn, method="magnitude", head_scope=scope))
        name = row_name(heads, ffn, scope)
        rows[name] = {"parameters": lineage["parameters"]["after"], "kept": lineage["parameters"]["kept"],
                      "heads_per_layer": lineage["heads_per_layer"], "intermediate_sizes": lineage["intermediate_sizes"]}
        runs[name] = int8_engine(pruned.eval(), tokenizer, labels, calibration, work, args.backend, args.seq)
    times = alternate(runs, tokenizer, args.batches, args.seq, args.rounds, args.calls)
    for name, row in rows.items():
        row["int8_ms"], row["speedup"] = times[name], ratios(times, name, "parent")
    return {"model": "bert-base geometry (random weights, magnitude, no recovery; accuracy not measured)",
            "backend": args.backend, "seq": args.seq, "rows": rows}


def demo_parent(home: str | None, work: Path):
    """(store, parent id, how it was found): the newest ``news-topics-full`` in ``home``, else trained
    here with the demo's own config (into ``home``, or a throwaway store)."""
    from hub.demo import DEMO_CONFIGS, EXAMPLES
    from hub.run_config import parse_run_config
    from hub.store import Store
    from hub.config import read_yaml
    from tasks.text_classification.train import train

    store = Store(home or work / "home")
    raw = read_yaml(EXAMPLES / DEMO_CONFIGS[0])
    found = [v for v in store.list_variants() if v.name == raw["name"]] if home else []
    if found:
        return store, found[-1].id, f"the newest {raw['name']} variant in {home}"
    start = time.perf_counter()
    cfg = parse_run_config({**raw, "tracking": {"report_to": []}}, where=DEMO_CONFIGS[0])
    variant = train(cfg, store, show_progress=False)
    return store, variant, (f"no store had one: trained here with the demo's config {DEMO_CONFIGS[0]} "
                            f"({cfg.train.max_steps} steps, {time.perf_counter() - start:.0f} s)")


def quick_parent(work: Path):
    """A tiny 4-head BERT fine-tuned as a variant in a throwaway store (what tests/test_prune.py uses)."""
    from hub.run_config import parse_run_config
    from hub.store import Store
    from tasks.text_classification.train import train
    from tests.conftest import make_texts, tiny_config, write_csv
    from tests.test_prune import tiny_bert

    from tests import conftest

    class Factory:   # tmp_path_factory for the conftest fixture's body
        def mktemp(self, name):
            folder = work / name
            folder.mkdir()
            return folder

    tokenizer_dir = conftest.tiny_model_dir.__wrapped__(Factory())
    folder = work / "bert4"
    folder.mkdir()
    for path in tokenizer_dir.iterdir():
        if "token" in path.name:
            shutil.copy(path, folder / path.name)
    tiny_bert().save_pretrained(folder)
    store = Store(work / "home")
    cfg = parse_run_config(tiny_config(folder, write_csv(work / "topics.csv", make_texts(240)), train={"max_steps": 12}))
    return store, train(cfg, store, show_progress=False)


def print_result(result: dict) -> None:
    print(f"\n{result['model']}  ({result['backend']} int8, seq {result['seq']})")
    if "recovery" in result:
        r = result["recovery"]
        print(f"recovery: {r['steps']} steps of batch {r['batch_size']}, lr {r['learning_rate']:g}, {r['method']} "
              f"importance, distillation T {r['temperature']:g} alpha {r['alpha']:g}; accuracy on "
              f"{result['test_examples']} test examples; d pts = points against the parent (torch vs torch, int8 vs int8)")
    batches = list(next(iter(result["rows"].values()))["int8_ms"])
    print(f"{'':<16}{'params':>12}{'kept':>6}{'torch acc':>10}{'d pts':>7}{'int8 acc':>9}{'d pts':>7}"
          + "".join(f"{'b' + str(b) + ' ms':>10}{'x':>6}" for b in batches))
    for name, row in result["rows"].items():
        acc = (f"{row['accuracy']:>10.4f}{row['accuracy_delta_points']:>7.2f}{row['int8_accuracy']:>9.4f}"
               f"{row['int8_accuracy_delta_points']:>7.2f}") if "accuracy" in row else f"{'not measured':>33}"
        cells = "".join(f"{ms:>10.2f}{row['speedup'][b]:>6.2f}" for b, ms in row["int8_ms"].items())
        print(f"{name:<16}{row['parameters']:>12,}{row.get('kept', 1.0):>6.2f}{acc}{cells}")


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as ``uptime`` shows them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="evalhub store holding the parent (and where a parent trained here is kept)")
    parser.add_argument("--variant", help="the parent variant (default: the demo's news-topics-full, see above)")
    parser.add_argument("--models", default="variant,bert-base", help="variant and/or bert-base")
    parser.add_argument("--settings", type=setting, nargs="+", default=[(0.2, 0.2, "global"), (0.4, 0.4, "global")],
                        metavar="HEADS/FFN[:layer]", help="shares of heads and FFN neurons removed, e.g. 0.2/0.2 "
                        "0.4/0.4 0.5/0.6:layer (:layer: the head share from every layer, balanced layers)")
    parser.add_argument("--method", default="taylor", choices=["taylor", "magnitude"])
    parser.add_argument("--recover-steps", type=int, default=150)
    parser.add_argument("--recover-lr", type=float, default=1e-4, help="recovery learning rate (the demo's fine-tune rate)")
    parser.add_argument("--backend", default=None, help="openvino or onnxruntime (default: openvino if installed)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny BERT trained here, 2 recovery steps: a smoke run")
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args(argv)
    if args.backend is None:
        args.backend = "openvino" if backend_for("openvino").is_available() else "onnxruntime"
    start, load_start = time.perf_counter(), load()
    print(f"load average at start: {load_start} (2 cores shared; ratios within this run are what count)", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.quick:
            args.recover_steps, args.rounds, args.calls, args.seq = 2, 1, 1, 32
            store, parent = quick_parent(work)
            done(results, bench_variant(store, parent, args, _fresh(work, "engines-v")), args, load_start, start)
        else:
            from hub.store import Store

            if "variant" in args.models:
                if args.variant:
                    store, parent, how = Store(args.home), args.variant, f"--variant {args.variant}"
                else:
                    store, parent, how = demo_parent(args.home, work)
                print(f"parent: {how}", flush=True)
                done(results, bench_variant(store, parent, args, _fresh(work, "engines-v")) | {"parent_from": how},
                     args, load_start, start)
            if "bert-base" in args.models:
                done(results, bench_geometry(args, _fresh(work, "engines-b")), args, load_start, start)
    print(f"\nload average at end: {load()}; {time.perf_counter() - start:.0f} s in all")
    return 0


def done(results: list, result: dict, args, load_start: str, start: float) -> None:
    """Print a model's table as soon as it is measured, and (re)write the JSON with everything so far."""
    results.append(result)
    print_result(result)
    if args.json:
        summary = {"load_start": load_start, "load_end": load(), "elapsed_s": round(time.perf_counter() - start, 1)}
        Path(args.json).write_text(json.dumps({"run": summary, "results": results}, indent=2, default=str))


def _fresh(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir()
    return folder


if __name__ == "__main__":
    sys.exit(main())
