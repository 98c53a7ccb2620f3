#!/usr/bin/env python
"""Engines against what a user would do without evalhub, in one run, on the same inputs.

Models: BERT-base geometry (12 layers, hidden 768, random weights) and the embedded MiniLM
fine-tuned on bbc-news (taken from the store, or fine-tuned first). Sequence length 128,
batch 1 and 32. Candidates are evalhub's engines built through their backends; peers are
each runtime used the way its own documentation recommends by default:

* torch eager fp32 (the baseline),
* torch bf16 with ``torch.compile``,
* ONNX Runtime: the transformer optimizer's fused graph, ``quantize_dynamic``, a default session,
* OpenVINO: ``convert_model`` + ``compile_model`` with default hints.

Timings drift several-fold when another process shares the cores, so every round times
every entry once, alternating, and the median over rounds is reported. The script also
measures this machine's matrix-multiply peak for fp32, bf16 and int8 in the same run and
prints each engine's achieved throughput at batch 32 as a fraction of its precision's
peak. On MiniLM it reports argmax agreement with torch fp32 and the accuracy of each on
the test split.

    .venv/bin/python scripts/bench_engines.py --json bench_engines.json
    .venv/bin/python scripts/bench_engines.py --quick     # tiny model, a smoke run
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.engines.base import BuildContext  # noqa: E402
from hub.engines.build import backend_for, build_into  # noqa: E402
from hub.engines.reports import synthetic_batch  # noqa: E402

CANDIDATES = [("torch", "bf16", {}), ("onnxruntime", "fp32", {}), ("onnxruntime", "int8", {}),
              ("onnxruntime", "int8", {"quantization": "static"}), ("openvino", "fp32", {}),
              ("openvino", "bf16", {}), ("openvino", "int8", {}), ("openvino", "int8", {"mode": "throughput"})]


# -- peers: each runtime's documented default path -------------------------------------------------
def peer_torch_fp32(model, tokenizer, work) -> Callable:
    def run(inputs):
        with torch.inference_mode():
            return model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()
    return run


def peer_torch_bf16_compiled(model, tokenizer, work) -> Callable:
    compiled = torch.compile(copy.deepcopy(model).to(torch.bfloat16))

    def run(inputs):
        with torch.inference_mode():
            return compiled(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.float().numpy()
    return run


def peer_ort_int8_dynamic(model, tokenizer, work) -> Callable:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    from hub.engines.onnx_export import export_onnx

    meta = export_onnx(model, tokenizer, work / "peer.onnx")
    opt = optimize_model(str(work / "peer.onnx"), model_type="bert", num_heads=model.config.num_attention_heads,
                         hidden_size=model.config.hidden_size)
    opt.save_model_to_file(str(work / "peer-opt.onnx"))
    # ORT's documented fix for "Unable to find data type for weight_name" on optimized graphs.
    quantize_dynamic(str(work / "peer-opt.onnx"), str(work / "peer-int8.onnx"),
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    session = ort.InferenceSession(str(work / "peer-int8.onnx"), providers=["CPUExecutionProvider"])
    names = meta["inputs"]
    return lambda inputs: session.run(None, {n: inputs[n] for n in names})[0]


def peer_openvino_default(model, tokenizer, work) -> Callable:
    import openvino as ov

    example = {k: torch.from_numpy(v) for k, v in synthetic_batch(tokenizer, 2, 16).items()
               if k != "token_type_ids" or "token_type_ids" in tokenizer.model_input_names}
    compiled = ov.Core().compile_model(ov.convert_model(model, example_input=example), "CPU")
    names = [p.get_any_name() for p in compiled.inputs]
    request = compiled.create_infer_request()
    return lambda inputs: request.infer({n: inputs[n] for n in names})[0]


PEERS = {"torch-fp32-eager (baseline)": peer_torch_fp32, "torch-bf16-compile": peer_torch_bf16_compiled,
         "ort-fused-int8-dynamic": peer_ort_int8_dynamic, "openvino-default": peer_openvino_default}


# -- building the entries ----------------------------------------------------------------------------
def build_entries(model, tokenizer, labels, calibration, work: Path, quick: bool) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    for name, make in PEERS.items():
        entries[name] = _entry("peer", name, lambda m=make: m(model, tokenizer, work), _peer_precision(name))
    for backend_name, precision, options in CANDIDATES:
        backend = backend_for(backend_name)
        if not backend.is_available() or (quick and options):
            continue
        label = f"evalhub {backend_name}-{precision}" + "".join(f" {k}={v}" for k, v in options.items())
        folder = work / label.replace(" ", "_").replace("=", "-")
        folder.mkdir()
        ctx = BuildContext(model=model, tokenizer=tokenizer, labels=labels, max_length=128,
                           calibration_texts=calibration, work_dir=work / f"ctx-{folder.name}", options=dict(options))
        entries[label] = _entry("evalhub", label, lambda b=backend, c=ctx, f=folder, p=precision:
                                build_into(b, c, f, p, "bench", "bench")[1].run, precision)
    return entries


def _peer_precision(name: str) -> str:
    return "fp32" if "fp32" in name else "bf16" if "bf16" in name or "openvino" in name else "int8"


def _entry(kind: str, label: str, make: Callable, precision: str) -> dict:
    start = time.perf_counter()
    try:
        run = make()
        error = None
    except Exception as exc:  # a runtime that fails here is reported, not fatal
        run, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return {"kind": kind, "label": label, "run": run, "precision": precision, "error": error,
            "build_s": time.perf_counter() - start, "times": {}}


# -- measuring -------------------------------------------------------------------------------------------
def measure(entries: dict[str, dict], tokenizer, batches, seq: int, rounds: int, calls: int) -> None:
    """Alternate: every round times every entry at every batch size once (median of `calls`)."""
    inputs = {b: synthetic_batch(tokenizer, b, seq) for b in batches}
    live = [e for e in entries.values() if e["run"] is not None]
    for entry in live:  # warm-up (compilation, first-call allocations) outside the timings
        for b in batches:
            entry["run"](inputs[b])
    for _ in range(rounds):
        for b in batches:
            for entry in live:
                times = []
                for _ in range(calls):
                    t = time.perf_counter()
                    entry["run"](inputs[b])
                    times.append(time.perf_counter() - t)
                entry["times"].setdefault(b, []).append(statistics.median(times) * 1000)


def agreement(entries: dict[str, dict], tokenizer, texts: list[str], labels: np.ndarray) -> None:
    """Argmax agreement with the baseline and accuracy of every entry on the evaluation texts."""
    enc = []
    for start in range(0, len(texts), 32):
        batch = tokenizer(texts[start:start + 32], truncation=True, max_length=128, padding=True, return_tensors="np")
        enc.append({k: v.astype(np.int64) for k, v in batch.items()})
    outputs = {}
    for label, entry in entries.items():
        if entry["run"] is not None:
            outputs[label] = np.concatenate([np.asarray(entry["run"](e)) for e in enc]).argmax(1)
    base = outputs[next(iter(PEERS))]
    for label, preds in outputs.items():
        entries[label]["agreement"] = float((preds == base).mean())
        entries[label]["accuracy"] = float((preds == labels).mean())


# -- peaks and FLOPs ---------------------------------------------------------------------------------
def matmul_peaks(n: int = 2048, seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s (GOPS for int8) of a square matrix product per precision on this machine:
    the best of torch's and OpenVINO's (oneDNN) kernels, so that no engine beats its "peak"
    only because one library's matmul is slower than another's."""
    peaks = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        peaks[name] = max(_rate(lambda: a @ b, 2 * n ** 3, seconds), _ov_rate(n, seconds, name))
    a8 = torch.randint(-128, 127, (n, n), dtype=torch.int8)
    peaks["int8"] = max(_rate(lambda: torch._int_mm(a8, a8), 2 * n ** 3, seconds), _ov_rate(n, seconds, "int8"))
    return peaks


def _ov_rate(n: int, seconds: float, precision: str) -> float:
    """OpenVINO MatMul (int8: FakeQuantize'd inputs, which oneDNN runs as an int8 product)."""
    try:
        import openvino as ov
        import openvino.runtime.opset13 as ops
    except ImportError:
        return 0.0
    x = ops.parameter([n, n], np.float32)
    w = ops.constant(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    if precision == "int8":
        lo, hi = ops.constant(np.float32(-4)), ops.constant(np.float32(4))
        x_in, w_in = (ops.fake_quantize(t, lo, hi, lo, hi, 256) for t in (x, w))
        config = {}
    else:
        x_in, w_in = x, w
        config = {"INFERENCE_PRECISION_HINT": "f32" if precision == "fp32" else "bf16"}
    compiled = ov.Core().compile_model(ov.Model([ops.matmul(x_in, w_in, False, True)], [x]), "CPU", config)
    request, data = compiled.create_infer_request(), np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    return _rate(lambda: request.infer([data]), 2 * n ** 3, seconds)


def _rate(fn: Callable, ops: float, seconds: float) -> float:
    fn()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or runs < 3:
        fn()
        runs += 1
    return ops * runs / (time.perf_counter() - start) / 1e9


def flops_per_sample(config, seq: int) -> float:
    """Encoder FLOPs of one sequence: projections and FFN (24 h²) plus attention (4 s h) per token per layer."""
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_token = 8 * h * h + 4 * h * inter + 4 * seq * h
    return float(layers * seq * per_token)


# -- models and data -------------------------------------------------------------------------------
def bert_base(labels: int):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(num_labels=labels)).eval()


def minilm_variant(home: str | None, variant: str | None):
    """A MiniLM variant fine-tuned on bbc-news from the store, or a new one (75 steps)."""
    from evaluators.runner import load_eval_splits
    from hub.registries import TASKS
    from hub.run_config import load_run_config
    from hub.store import Store
    from tasks.text_classification.predict import load_model

    store = Store(home)
    if variant:
        record = store.get_variant(variant)
    else:
        found = [v for v in store.list_variants() if v.base_model == "minilm" and v.has_merged
                 and v.dataset.get("source") == "bbc-news"]
        if found:
            record = found[-1]
        else:
            cfg = load_run_config(ROOT / "hub" / "examples" / "news-topics-full.yaml")
            cfg.tracking.report_to = []
            record = store.get_variant(TASKS.get(cfg.task).train(cfg, store))
    model, tokenizer = load_model(store, record)
    splits = load_eval_splits(record, ("test", "train"))
    (texts, refs, _, _), train_texts = splits["test"], splits["train"][0]
    return record, model.float().eval(), tokenizer, texts, np.asarray(refs), train_texts[:128]


# -- reporting --------------------------------------------------------------------------------------
def summarise(name: str, entries: dict[str, dict], peaks: dict, flops: float, batches) -> dict:
    rows = []
    for entry in entries.values():
        row = {k: entry.get(k) for k in ("kind", "label", "precision", "error", "build_s", "agreement", "accuracy")}
        for b in batches:
            t = entry["times"].get(b)
            row[f"b{b}_ms"] = statistics.median(t) if t else None
        if row.get(f"b{batches[-1]}_ms"):
            achieved = flops * batches[-1] / (row[f"b{batches[-1]}_ms"] / 1000) / 1e9
            row["peak_fraction"] = achieved / peaks[entry["precision"]]
        rows.append(row)
    result = {"model": name, "rows": rows}
    for b in batches:
        ok = [r for r in rows if r[f"b{b}_ms"] and (r.get("agreement") is None or r["agreement"] >= 0.99)]
        peers = [r for r in ok if r["kind"] == "peer"]
        ours = [r for r in ok if r["kind"] == "evalhub"]
        baseline = next(r for r in rows if r["label"].startswith("torch-fp32"))[f"b{b}_ms"]
        if peers and ours:
            best_peer = min(peers, key=lambda r: r[f"b{b}_ms"])
            best = min(ours, key=lambda r: r[f"b{b}_ms"])
            result[f"b{b}"] = {"best_evalhub": best["label"], "best_peer": best_peer["label"],
                               "speedup_vs_best_peer": best_peer[f"b{b}_ms"] / best[f"b{b}_ms"],
                               "speedup_vs_torch_fp32": baseline / best[f"b{b}_ms"]}
    return result


def print_result(result: dict, batches) -> None:
    print(f"\n== {result['model']}")
    header = f"{'entry':<46} {'prec':<5}" + "".join(f" {'b' + str(b) + ' ms':>9}" for b in batches)
    print(header + f" {'peak%':>6} {'agree':>6} {'acc':>6}")
    for r in result["rows"]:
        if r["error"]:
            print(f"{r['label']:<46} failed: {r['error']}")
            continue
        cells = "".join(f" {r[f'b{b}_ms']:>9.1f}" for b in batches)
        pf = f"{100 * r['peak_fraction']:>5.0f}%" if r.get("peak_fraction") else "     -"
        ag = f"{r['agreement']:>6.3f}" if r.get("agreement") is not None else "     -"
        acc = f"{r['accuracy']:>6.3f}" if r.get("accuracy") is not None else "     -"
        print(f"{r['label']:<46} {r['precision']:<5}{cells} {pf} {ag} {acc}")
    for b in batches:
        if f"b{b}" in result:
            s = result[f"b{b}"]
            print(f"batch {b}: best evalhub {s['best_evalhub']} is {s['speedup_vs_best_peer']:.2f}x the fastest peer "
                  f"({s['best_peer']}) and {s['speedup_vs_torch_fp32']:.2f}x torch fp32")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", help="evalhub store holding (or to receive) the MiniLM variant")
    parser.add_argument("--variant", help="MiniLM variant id to use (default: latest bbc-news MiniLM)")
    parser.add_argument("--models", default="bert-base,minilm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="tiny settings for a smoke run")
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args(argv)
    batches = (1, 32)
    peaks = matmul_peaks(512 if args.quick else 2048, 0.2 if args.quick else 1.0)
    print("matrix-multiply peaks: " + ", ".join(f"{k} {v:,.0f} G{'OPS' if k == 'int8' else 'FLOP/s'}" for k, v in peaks.items()))
    results = {"peaks": peaks, "torch": torch.__version__, "threads": torch.get_num_threads(), "models": []}
    for name in filter(None, args.models.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            results["models"].append(bench_model(name, args, batches, peaks, Path(tmp)))
        print_result(results["models"][-1], batches)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def bench_model(name: str, args, batches, peaks, work: Path) -> dict:
    texts = refs = None
    if name == "minilm":
        _, model, tokenizer, texts, refs, calibration = minilm_variant(args.home, args.variant)
        labels = [str(i) for i in range(model.config.num_labels)]
    else:
        from hub.models import load_tokenizer

        from hub.data import load_data
        from hub.run_config import DataConfig

        model, tokenizer = bert_base(5), load_tokenizer("minilm")
        calibration = list(load_data(DataConfig()).splits["train"]["text"][:128])  # bbc-news text
        labels = [str(i) for i in range(5)]
    if args.quick:
        texts, refs = (texts[:32], refs[:32]) if texts is not None else (None, None)
    entries = build_entries(model, tokenizer, labels, calibration, work, args.quick)
    measure(entries, tokenizer, batches, args.seq, 1 if args.quick else args.rounds, 1 if args.quick else args.calls)
    if texts is not None:
        agreement(entries, tokenizer, texts, refs)
    return summarise(name, entries, peaks, flops_per_sample(model.config, args.seq), batches)


if __name__ == "__main__":
    sys.exit(main())
