"""Benchmark evalhub's training loop: against transformers' ``Trainer``, and PEFT vs full fine-tuning.

Two comparisons, in one run of this script:

1. **evalhub loop vs ``Trainer``** - the same model, data (the train split of ``--data``,
   tokenised by evalhub's own ``tokenize_split`` with ``--max-length``), batch size,
   optimizer (torch AdamW, lr 5e-5, weight decay 0.01 off biases/LayerNorm, grad-norm clip
   1.0, linear schedule with 10% warm-up) and number of steps; full fine-tuning; no
   evaluation, checkpoint, logging or progress-bar work in either. Steady-state samples/s
   is timed from the ``on_step`` callback (evalhub) and ``TrainerCallback.on_step_end``
   (Trainer), from step ``--timing-warmup`` to step ``steps - 1``: model load,
   tokenisation, evalhub's end-of-training validation (which runs before the callback of
   the last step) and saving are all outside the window. Ratio reported: evalhub/Trainer
   (target >= 1.0).
2. **PEFT methods vs full fine-tuning** (evalhub loop): trainable-parameter fraction (from
   the variant's ``train_summary``), median step time and peak memory. Memory is measured
   in a **fresh subprocess per run** (this script re-invoked with the hidden
   ``--_one METHOD`` flag), because the peak RSS of a process never goes down: in one
   process every method would inherit the peak of the one before (and ``tracemalloc`` does
   not see torch's allocations). The peak is read as ``VmHWM`` from ``/proc/self/status``,
   not ``resource.getrusage(...).ru_maxrss``: Linux carries ``ru_maxrss`` across
   fork + exec, so a child started by a parent holding 1.9 GB reports >= 1.9 GB whatever it
   does (``ru_maxrss`` is still recorded, as ``ru_maxrss_mb``). After imports the child
   takes its RSS as baseline and resets ``VmHWM`` (``/proc/self/clear_refs``); reported
   are the peak at the last timed step (before the final validation and save) and its
   growth over the baseline.

Why alternate: the CPUs are shared with other jobs, so throughput drifts over minutes.
Candidates run interleaved, one round per ``--repeats``, the order reversed every other
round (A B, B A, A B, ...): drift then hits all of them alike, and a steady rise or fall of
the load does not favour whoever runs first (plain A B A B did, in a run where the load
doubled). Medians over rounds and the ratios are the figures to read, not absolute numbers;
every per-step time is kept in the JSON.

Equalised on purpose (differences found in the installed sources):

- transformers 5 ``TrainingArguments`` has no ``warmup_ratio``; ``warmup_steps`` takes the
  same integer evalhub computes (``int(0.1 * steps)``).
- ``Trainer``'s default optimizer on torch >= 2.8 is ``adamw_torch_fused``; evalhub uses
  plain ``torch.optim.AdamW``, so the Trainer gets ``optim="adamw_torch"``
  (``--trainer-optim`` to change).
- ``Trainer`` defaults to ``weight_decay=0.0``; evalhub to 0.01 (both skip biases and
  LayerNorm), so the Trainer gets 0.01.
- ``from_pretrained`` returns a model in eval mode; both loops switch to train mode (dropout
  on) before the first step. The benchmark also sets train mode on the freshly loaded model
  (a no-op for the current loop; ``--evalhub-as-is`` leaves it out) and each evalhub run
  records ``dropout_active`` (the model's mode at the first step).

Run (from the repository root)::

    .venv/bin/python scripts/bench_train.py --json bench_train.json
    .venv/bin/python scripts/bench_train.py --steps 20 --repeats 2 --methods none,lora
    .venv/bin/python scripts/bench_train.py --quick          # tiny model and data, smoke run

``--task text-generation``: the text-generation loop (LoRA) against TRL's ``SFTTrainer`` instead
(``scripts/bench_train_gen.py``, whose docstring says what is equalised).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MARKER = "BENCH_TRAIN_RESULT "
LR, WEIGHT_DECAY, WARMUP_RATIO, MAX_GRAD_NORM, SEED = 5e-5, 0.01, 0.1, 1.0, 42
DEFAULTS = {"steps": 30, "batch_size": 16, "max_length": 128, "repeats": 2,
            "methods": "none,lora,adalora,ia3,prompt_tuning"}
QUICK = {"steps": 12, "batch_size": 8, "max_length": 32, "repeats": 1, "methods": "none,lora"}
TASKS = ("text-classification", "text-generation")   # text-generation: scripts/bench_train_gen.py


# --------------------------------------------------------------------------- arguments

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default=TASKS[0],
                   help="whose loop: text-generation runs scripts/bench_train_gen.py (its own --help)")
    p.add_argument("--model", default="minilm", help="model alias or folder (default: minilm)")
    p.add_argument("--data", default="bbc-news", help="data source (default: bbc-news)")
    p.add_argument("--steps", type=int, help=f"optimizer steps per run (default {DEFAULTS['steps']})")
    p.add_argument("--batch-size", type=int, help=f"examples per step (default {DEFAULTS['batch_size']})")
    p.add_argument("--max-length", type=int, help=f"tokens per example (default {DEFAULTS['max_length']})")
    p.add_argument("--repeats", type=int, help=f"alternation rounds (default {DEFAULTS['repeats']})")
    p.add_argument("--methods", help=f"PEFT methods, comma-separated (default {DEFAULTS['methods']})")
    p.add_argument("--timing-warmup", type=int, default=3, help="steps excluded from timing (default 3)")
    p.add_argument("--trainer-optim", default="adamw_torch", help="Trainer optim (default adamw_torch)")
    p.add_argument("--evalhub-as-is", action="store_true",
                   help="do not put the loaded model in train mode (measure the loop untouched)")
    p.add_argument("--skip-trainer", action="store_true", help="skip comparison 1")
    p.add_argument("--skip-peft", action="store_true", help="skip comparison 2")
    p.add_argument("--json", type=Path, help="write all figures to this file")
    p.add_argument("--quick", action="store_true", help="tiny random model and tiny data (smoke run)")
    p.add_argument("--_one", dest="one", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < args.timing_warmup + 2:
        p.error(f"--steps must be at least --timing-warmup + 2 = {args.timing_warmup + 2}")
    return args


# --------------------------------------------------------------------------- shared pieces

def run_config(args: argparse.Namespace, method: str = "none") -> Any:
    from hub.run_config import parse_run_config

    return parse_run_config({
        "seed": SEED,
        "model": {"name": args.model, "max_length": args.max_length},
        "data": {"source": args.data},
        "peft": {"method": method},
        "train": {"learning_rate": LR, "batch_size": args.batch_size, "max_steps": args.steps,
                  "optimizer": "adamw", "scheduler": "linear", "warmup_ratio": WARMUP_RATIO,
                  "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM,
                  "log_every": args.steps},
        "tracking": {"report_to": []},
    }, where="bench")


def timed_window(stamps: dict[int, float], args: argparse.Namespace) -> dict:
    """Samples/s and step times between the callbacks of steps warmup .. steps-1."""
    steps = list(range(args.timing_warmup, args.steps))
    times = [stamps[s] for s in steps]
    intervals = [b - a for a, b in zip(times, times[1:])]
    elapsed = times[-1] - times[0]
    return {"samples_per_s": args.batch_size * len(intervals) / elapsed,
            "median_step_s": statistics.median(intervals), "timed_steps": len(intervals),
            "step_s": [round(x, 4) for x in intervals]}


def proc_status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process image, from /proc/self/status, in MiB."""
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024  # kB


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def watched_model(train_mode: bool):
    """Patch the loop's ``load_classifier`` to keep a handle on the model (and set train mode)."""
    import tasks.text_classification.train as loop

    original, seen = loop.load_classifier, {}

    def load(*a: Any, **kw: Any) -> Any:
        model = original(*a, **kw)
        seen["model"] = model.train() if train_mode else model
        return seen["model"]

    loop.load_classifier = load
    try:
        yield seen
    finally:
        loop.load_classifier = original


# --------------------------------------------------------------------------- the candidates

def run_evalhub(args: argparse.Namespace, method: str = "none",
                at_step: Callable[[int], None] | None = None) -> dict:
    """One evalhub training run in a fresh temporary store; returns timings and the summary."""
    from hub.store import Store
    from tasks.text_classification.train import train

    cfg, stamps, mode = run_config(args, method), {}, {}

    def on_step(step: int, logs: dict) -> None:
        stamps[step] = time.perf_counter()
        if step == 1:
            mode["dropout_active"] = seen["model"].training
        if at_step is not None:
            at_step(step)

    with tempfile.TemporaryDirectory(prefix="bench-evalhub-") as tmp, \
            watched_model(not args.evalhub_as_is) as seen:
        store = Store(Path(tmp) / "home")
        variant_id = train(cfg, store, show_progress=False, on_step=on_step)
        summary = store.get_variant(variant_id).train_summary
    return {**timed_window(stamps, args), **mode, "trainable": summary["trainable_parameters"]}


def run_trainer(args: argparse.Namespace) -> dict:
    """One transformers ``Trainer`` run on the same data, model and optimizer settings."""
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback, set_seed
    from transformers.trainer_callback import PrinterCallback

    from hub.data import load_data
    from hub.models import load_classifier, load_tokenizer
    from tasks.text_classification.data import tokenize_split

    cfg, stamps = run_config(args), {}
    set_seed(SEED)
    data = load_data(cfg.data)
    tokenizer = load_tokenizer(cfg.model.name)
    dataset = tokenize_split(data.splits["train"], tokenizer, cfg.model.max_length)
    model = load_classifier(cfg.model.name, data.labels)

    class Stamp(TrainerCallback):
        def on_step_end(self, targs: Any, state: Any, control: Any, **kw: Any) -> None:
            stamps[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        trainer = Trainer(model=model, args=trainer_arguments(args, tmp), train_dataset=dataset,
                          data_collator=DataCollatorWithPadding(tokenizer), callbacks=[Stamp()])
        trainer.remove_callback(PrinterCallback)  # its end-of-run summary line only
        trainer.train()
    return timed_window(stamps, args)


def trainer_arguments(args: argparse.Namespace, output_dir: str) -> Any:
    """TrainingArguments (transformers 5 names) matching evalhub's loop, all overhead off."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=LR, lr_scheduler_type="linear", warmup_steps=int(WARMUP_RATIO * args.steps),
        optim=args.trainer_optim, weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM,
        seed=SEED, eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[],
        disable_tqdm=True, dataloader_num_workers=0, use_cpu=True)


# --------------------------------------------------------------------------- comparison 1

def round_order(items: Any, r: int) -> list:
    """A B, then B A: with load rising (or falling) over the run, going first is no advantage."""
    return list(items) if r % 2 == 0 else list(items)[::-1]


def alternate(args: argparse.Namespace, candidates: dict[str, Callable[[argparse.Namespace], dict]]) -> dict:
    """Each candidate once per round, in ``round_order``; per candidate its runs and medians, and the
    first over the second: samples/s (medians, per round) and by median step time."""
    runs: dict[str, list[dict]] = {name: [] for name in candidates}
    for r in range(args.repeats):
        for name in round_order(candidates, r):
            result = candidates[name](args)
            runs[name].append(result)
            print(f"  round {r + 1}/{args.repeats} {name:8s} {result['samples_per_s']:7.2f} samples/s "
                  f"(median step {result['median_step_s']:.3f} s)", flush=True)
    out = {name: {"runs": rs, "samples_per_s": [x["samples_per_s"] for x in rs],
                  "median_samples_per_s": statistics.median(x["samples_per_s"] for x in rs),
                  "median_step_s": statistics.median(x["median_step_s"] for x in rs)}
           for name, rs in runs.items()}
    a, b = candidates
    out[f"ratio_{a}_over_{b}"] = out[a]["median_samples_per_s"] / out[b]["median_samples_per_s"]
    out["ratio_per_round"] = [x["samples_per_s"] / y["samples_per_s"] for x, y in zip(runs[a], runs[b])]
    # Robust to the odd step stalled by another job: the ratio of median step times.
    out["ratio_by_median_step"] = out[b]["median_step_s"] / out[a]["median_step_s"]
    return out


# --------------------------------------------------------------------------- comparison 2

def one_method(args: argparse.Namespace) -> None:
    """Child process: train one method, print its figures as one marked JSON line."""
    import torch  # noqa: F401  (imports count in the baseline, not in the growth)
    import transformers  # noqa: F401
    import peft  # noqa: F401

    baseline, was_reset, peak = proc_status_mb("VmRSS"), reset_peak_rss(), {}

    def at_step(step: int) -> None:
        if step == args.steps - 1:
            peak["train"] = proc_status_mb("VmHWM")

    result = run_evalhub(args, args.one, at_step)
    result.update(baseline_rss_mb=baseline, peak_rss_mb=peak["train"], peak_reset_after_imports=was_reset,
                  rss_growth_mb=peak["train"] - baseline, peak_rss_at_exit_mb=proc_status_mb("VmHWM"),
                  ru_maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(MARKER + json.dumps(result), flush=True)


def spawn_method(args: argparse.Namespace, method: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_one", method, "--model", args.model,
           "--data", args.data, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
           "--max-length", str(args.max_length), "--timing-warmup", str(args.timing_warmup)]
    cmd += ["--evalhub-as-is"] if args.evalhub_as_is else []
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_train: method {method} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(MARKER):])


def compare_methods(args: argparse.Namespace, methods: list[str]) -> dict:
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    for r in range(args.repeats):
        for method in round_order(methods, r):
            result = spawn_method(args, method)
            runs[method].append(result)
            print(f"  round {r + 1}/{args.repeats} {method:14s} step {result['median_step_s']:.3f} s, "
                  f"peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    out = {m: summarise_method(rs) for m, rs in runs.items()}
    base = out.get("none")
    for fig in out.values():
        fig["ratios_vs_full"] = None if base is None else {
            "step_time": _ratio(fig["median_step_s"], base["median_step_s"]),
            "peak_rss": _ratio(fig["peak_rss_mb"], base["peak_rss_mb"]),
            "rss_growth": _ratio(fig["rss_growth_mb"], base["rss_growth_mb"])}
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def summarise_method(runs: list[dict]) -> dict:
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {"runs": runs, "trainable": runs[0]["trainable"]["trainable"],
            "total": runs[0]["trainable"]["total"], "fraction": runs[0]["trainable"]["fraction"],
            "median_step_s": med("median_step_s"), "samples_per_s": med("samples_per_s"),
            "peak_rss_mb": med("peak_rss_mb"), "rss_growth_mb": med("rss_growth_mb"),
            "dropout_active": all(r.get("dropout_active") for r in runs)}


# --------------------------------------------------------------------------- report

def machine_info() -> dict:
    import accelerate
    import peft
    import torch
    import transformers

    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "peft": peft.__version__, "accelerate": accelerate.__version__,
            "loadavg_at_start": os.getloadavg()}


def print_trainer_table(res: dict) -> None:
    print("\nevalhub loop vs transformers Trainer (full fine-tuning)")
    print(f"  {'candidate':10s} {'samples/s per round':>28s} {'median':>8s} {'step s':>8s}")
    for name in ("evalhub", "trainer"):
        per = " ".join(f"{x:7.2f}" for x in res[name]["samples_per_s"])
        print(f"  {name:10s} {per:>28s} {res[name]['median_samples_per_s']:8.2f} "
              f"{res[name]['median_step_s']:8.3f}")
    rounds = ", ".join(f"{x:.3f}" for x in res["ratio_per_round"])
    print(f"  ratio evalhub/Trainer: {res['ratio_evalhub_over_trainer']:.3f} "
          f"(per round: {rounds}; target >= 1.0)")
    print(f"  ratio by median step time (robust to stalls): {res['ratio_by_median_step']:.3f}")


def print_methods_table(res: dict) -> None:
    print("\nPEFT methods vs full fine-tuning (evalhub loop, one subprocess per run)")
    print(f"  {'method':14s} {'trainable':>11s} {'fraction':>9s} {'step s':>7s} {'peak MB':>8s} "
          f"{'growth MB':>9s} {'x step':>7s} {'x peak':>7s} {'x growth':>8s}")
    for m, f in res.items():
        r = f["ratios_vs_full"] or {}
        ratio = lambda k: f"{r[k]:7.2f}" if r.get(k) is not None else "      -"  # noqa: E731
        print(f"  {m:14s} {f['trainable']:11,d} {f['fraction']:9.4%} {f['median_step_s']:7.3f} "
              f"{f['peak_rss_mb']:8.0f} {f['rss_growth_mb']:9.0f} {ratio('step_time')} "
              f"{ratio('peak_rss')} {ratio('rss_growth'):>8s}")


# --------------------------------------------------------------------------- main

def quick_inputs(args: argparse.Namespace, root: Path) -> None:
    """Point --model/--data at a tiny random BERT and a tiny CSV (the test fixtures' recipe)."""
    from tests.conftest import make_texts, tiny_model_dir, write_csv

    class Factory:
        def mktemp(self, name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=name, dir=root))

    args.model = str(tiny_model_dir.__wrapped__(Factory()))
    args.data = str(write_csv(root / "topics.csv", make_texts(240)))


def quiet() -> None:
    """No progress bars from datasets (tokenising) and transformers (loading, saving)."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    task = argparse.ArgumentParser(add_help=False)
    task.add_argument("--task", choices=TASKS, default=TASKS[0])
    if task.parse_known_args(argv)[0].task == "text-generation":
        from scripts.bench_train_gen import main as generation_main  # its own arguments and report
        return generation_main(argv)
    args = parse_args(argv)
    quiet()
    if args.one:
        one_method(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        if args.quick:
            quick_inputs(args, Path(tmp))
        return run_all(args)


def run_all(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    report: dict[str, Any] = {"machine": machine_info(), "settings": {
        k: getattr(args, k) for k in ("model", "data", "steps", "batch_size", "max_length", "repeats",
                                      "timing_warmup", "trainer_optim", "evalhub_as_is", "quick")}}
    report["settings"].update(methods=methods, learning_rate=LR, weight_decay=WEIGHT_DECAY,
                              warmup_ratio=WARMUP_RATIO, max_grad_norm=MAX_GRAD_NORM, seed=SEED)
    m = report["machine"]
    print(f"bench_train: {m['cpus_usable']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}, "
          f"transformers {m['transformers']}, load {m['loadavg_at_start'][0]:.2f}; "
          f"{args.steps} steps x batch {args.batch_size} x {args.max_length} tokens, {args.repeats} rounds")
    if not args.skip_trainer:
        print("\n[1] evalhub vs Trainer, alternating", flush=True)
        report["loop_vs_trainer"] = alternate(args, {"evalhub": run_evalhub, "trainer": run_trainer})
    if not args.skip_peft and methods:
        print("\n[2] PEFT methods, alternating, one subprocess each", flush=True)
        report["peft_methods"] = compare_methods(args, methods)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    if "loop_vs_trainer" in report:
        print_trainer_table(report["loop_vs_trainer"])
    if "peft_methods" in report:
        print_methods_table(report["peft_methods"])
    print("\nTimings drift when other jobs share the CPUs; read the ratios, not the absolute figures.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
