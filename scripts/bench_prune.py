#!/usr/bin/env python
"""Pruned variants against their unpruned parent, in one run: test accuracy and int8 engine latency.

For each share in ``--fractions`` (heads and FFN neurons alike, default 0.2 and 0.4) the parent
variant is pruned and recovered by distillation exactly as ``evalhub prune`` does (a new variant in
the store), and then:

* accuracy on the test split of the recovered torch model, and of its int8 engine, beside the parent's;
* int8 engine latency at batch 1 and 32 (sequence ``--seq``), the parent's int8 engine timed in the same
  rounds, alternating, median over rounds; ratios are parent / pruned (above 1: the pruned one is faster).

With ``--models bert-base`` BERT-base geometry (random weights) is pruned by magnitude without recovery
and timed the same way (latency only: its accuracy means nothing). Engines are the int8 engine of
``--backend`` (OpenVINO + NNCF when installed, else ONNX Runtime dynamic int8), built through evalhub's
backends. Target (issue 15): a setting >= 1.3x the unpruned int8 engine at both batch sizes with
<= 1 point accuracy loss on the demo data.

    .venv/bin/python scripts/bench_prune.py --home .evalhub --variant VARIANT --json bench_prune.json
    .venv/bin/python scripts/bench_prune.py --quick     # a tiny BERT trained here: a smoke run
"""

from __future__ import annotations

import argparse
import json
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
    """{name: {batch: median ms}}: every round times every engine once at every batch size."""
    inputs = {b: synthetic_batch(tokenizer, b, seq) for b in batches}
    times: dict[str, dict[int, list[float]]] = {name: {b: [] for b in batches} for name in runs}
    for run in runs.values():   # warm-up outside the timings
        for b in batches:
            run(inputs[b])
    for _ in range(rounds):
        for b in batches:
            for name, run in runs.items():
                samples = []
                for _ in range(calls):
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


def bench_variant(store, parent_ref: str, args, work: Path) -> dict:
    """Prune + recover the parent at every share; accuracy and int8 latency beside the parent's."""
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
                       "accuracy": accuracy(torch_run(model), tokenizer, texts, refs, max_length)}}
    runs = {"parent": int8_engine(model, tokenizer, parent.labels, calibration, work, args.backend, max_length)}
    for share in args.fractions:
        start = time.perf_counter()
        vid = prune(store, parent.id, heads=share, ffn=share, method=args.method, recover_steps=args.recover_steps,
                    show_progress=False)
        pruned, _ = load_model(store, store.get_variant(vid))
        name = f"pruned-{share:g}"
        lineage = store.get_variant(vid).train_summary["pruning"]
        rows[name] = {"variant": vid, "prune_and_recover_s": time.perf_counter() - start,
                      "parameters": lineage["parameters"]["after"], "kept": lineage["parameters"]["kept"],
                      "heads_per_layer": lineage["heads_per_layer"], "intermediate_sizes": lineage["intermediate_sizes"],
                      "accuracy": accuracy(torch_run(pruned), tokenizer, texts, refs, max_length)}
        runs[name] = int8_engine(pruned, tokenizer, parent.labels, calibration, work, args.backend, max_length)
    for name, run in runs.items():
        rows[name]["int8_accuracy"] = accuracy(run, tokenizer, texts, refs, max_length)
    times = alternate(runs, tokenizer, args.batches, min(args.seq, max_length), args.rounds, args.calls)
    for name, row in rows.items():
        row["int8_ms"] = times[name]
        row["speedup"] = ratios(times, name, "parent")
        row["accuracy_delta_points"] = 100 * (row["accuracy"] - rows["parent"]["accuracy"])
    return {"model": parent.id, "backend": args.backend, "seq": min(args.seq, max_length), "rows": rows}


def bench_geometry(args, work: Path) -> dict:
    """BERT-base geometry, random weights: magnitude pruning, no recovery, int8 latency only."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from tasks.text_classification.prune import PruneSettings, prune_model

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=5)).eval()
    vocab = work / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(2000)]))
    tokenizer = BertTokenizerFast(vocab_file=str(vocab))
    labels = [f"c{i}" for i in range(5)]
    calibration = [" ".join(f"w{(i * 7 + j) % 2000}" for j in range(100)) for i in range(32)]
    runs, rows = {}, {"parent": {"parameters": sum(p.numel() for p in model.parameters())}}
    runs["parent"] = int8_engine(model, tokenizer, labels, calibration, work, args.backend, args.seq)
    for share in args.fractions:
        pruned, lineage = prune_model(model, PruneSettings(heads=share, ffn=share, method="magnitude"))
        name = f"pruned-{share:g}"
        rows[name] = {"parameters": lineage["parameters"]["after"], "kept": lineage["parameters"]["kept"]}
        runs[name] = int8_engine(pruned.eval(), tokenizer, labels, calibration, work, args.backend, args.seq)
    times = alternate(runs, tokenizer, args.batches, args.seq, args.rounds, args.calls)
    for name, row in rows.items():
        row["int8_ms"], row["speedup"] = times[name], ratios(times, name, "parent")
    return {"model": "bert-base geometry (random weights, magnitude, no recovery)", "backend": args.backend,
            "seq": args.seq, "rows": rows}


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
    print(f"{'':<14}{'params':>12}{'kept':>7}{'acc':>8}{'d pts':>7}{'int8 acc':>9}"
          + "".join(f"{'b' + str(b) + ' ms':>11}{'x':>7}" for b in next(iter(result['rows'].values()))["int8_ms"]))
    for name, row in result["rows"].items():
        acc = f"{row['accuracy']:>8.4f}{row['accuracy_delta_points']:>7.2f}{row['int8_accuracy']:>9.4f}" \
            if "accuracy" in row else f"{'':>24}"
        cells = "".join(f"{ms:>11.2f}{row['speedup'][b]:>7.2f}" for b, ms in row["int8_ms"].items())
        print(f"{name:<14}{row['parameters']:>12,}{row.get('kept', 1.0):>7.2f}{acc}{cells}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="evalhub store holding the parent variant")
    parser.add_argument("--variant", help="the parent variant (e.g. the demo's MiniLM full fine-tune)")
    parser.add_argument("--models", default="variant,bert-base", help="variant and/or bert-base")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.2, 0.4])
    parser.add_argument("--method", default="taylor", choices=["taylor", "magnitude"])
    parser.add_argument("--recover-steps", type=int, default=150)
    parser.add_argument("--backend", default=None, help="openvino or onnxruntime (default: openvino if installed)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny BERT trained here, 2 recovery steps: a smoke run")
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args(argv)
    if args.backend is None:
        args.backend = "openvino" if backend_for("openvino").is_available() else "onnxruntime"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.quick:
            args.recover_steps, args.rounds, args.calls, args.seq = 2, 1, 1, 32
            store, parent = quick_parent(work)
            results.append(bench_variant(store, parent, args, _fresh(work, "engines-v")))
        else:
            from hub.store import Store

            if "variant" in args.models:
                if not args.variant:
                    parser.error("--variant is required (or --models bert-base, or --quick)")
                results.append(bench_variant(Store(args.home), args.variant, args, _fresh(work, "engines-v")))
            if "bert-base" in args.models:
                results.append(bench_geometry(args, _fresh(work, "engines-b")))
    for result in results:
        print_result(result)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def _fresh(work: Path, name: str) -> Path:
    folder = work / name
    folder.mkdir()
    return folder


if __name__ == "__main__":
    sys.exit(main())
