"""Benchmark evalhub's text-generation training loop against TRL's ``SFTTrainer`` (LoRA, padding).

Run through ``scripts/bench_train.py --task text-generation``; this module is that part. The
baseline is one install away: ``.venv/bin/pip install "trl==1.16.0"`` (also the ``bench`` extra,
which ``dev`` includes).

Both train, in every run:

- the same model: the folder ``--model`` resolves to (``smollm2``: SmolLM2-135M-Instruct, converted
  once into ``$EVALHUB_HOME/cache/models`` or ``./.evalhub/cache/models``), fp32 from safetensors;
- the same rows in the same order: the train split evalhub's ``load_chat_data`` carves from
  ``--data`` (support-chat: 710 conversations), read once and handed to both. Both loops draw
  batches through accelerate's seedable sampler with seed 42, so step *k* holds the same rows in
  both: each run logs every batch's padded width and labelled tokens, and ``same_batches`` says
  whether they matched;
- the same LoRA: the ``LoraConfig`` evalhub's ``lora`` method builds (r 8, alpha 16, dropout 0.1,
  peft's default targets for Llama, ``q_proj``/``v_proj``), given to SFTTrainer as ``peft_config``;
- the same optimizer: torch AdamW (``optim="adamw_torch"``, not Trainer's fused default), lr 2e-4
  (evalhub's generation default), weight decay 0.01, grad-norm clip 1.0, linear schedule with
  ``int(0.1 * steps)`` warm-up steps; batch size, ``--max-length``, steps and seed;
- fp32 without gradient checkpointing: SFTConfig defaults to ``bf16=True`` and
  ``gradient_checkpointing=True``, both set off;
- padding on the right to the longest row of each batch, no packing; no evaluation, checkpoint,
  logging or progress-bar work in the timed window;
- the loss on the assistant's tokens only. evalhub's ``encode_chat`` labels each assistant turn's
  content and its ``<|im_end|>``. SFTTrainer's ``assistant_only_loss=True`` needs a template with
  ``{% generation %}`` markers; SmolLM2's has none and trl's ``get_training_chat_template`` does not
  know it (it raises), so SFTTrainer gets the model's own template with the assistant turn in a
  branch of its own, as trl's training templates do (e.g. SmolVLM's), the markers around content +
  ``<|im_end|>``. The header and the newline after the turn stay outside, as in evalhub's labels
  (trl's Qwen 2.5 template also marks the newlines: a token or two a turn). The text rendered is
  unchanged. Every run checks what SFTTrainer built: ``label_agreement`` is the share of train
  rows whose ``input_ids`` and ``labels`` equal evalhub's.

Not equalised (how each loop works; printed with the results):

- The loss. SFTTrainer's goes through trl's fused LM head (``trl/kernels/chunked_logprob.py``):
  logits in tiles of 32,768 vocabulary entries folded into running log-sum-exp statistics, never
  the whole (batch, length, vocab) tensor, each tile computed again in the backward; on CUDA/XPU
  with Triton only labelled positions are projected, here (CPU) every position is. It also
  computes entropy and token accuracy every step for its logs. evalhub calls
  ``model(**batch).loss``: the full logits (SmolLM2: 49,152 a token) and one cross-entropy.
- SFTTrainer passes ``use_cache=False``; evalhub's forward keeps the config's ``use_cache``.
- Over-long conversations: evalhub cuts the prompt's start, SFTTrainer the end. The default
  ``--max-length`` 384 is above the longest support-chat conversation (347 SmolLM2 tokens), so
  neither cuts; ``rows_over_max_length`` counts them otherwise.
- LoRA's initial values (each loop draws them from the RNG at a different point).

Timing as in the classification part: steady-state samples/s from the step callbacks (evalhub's
``on_step``, ``TrainerCallback.on_step_end``), steps ``--timing-warmup`` to ``steps - 1``, rounds
alternating A B / B A, medians; padded tokens/s over the same window as a second figure. Ratio
reported: evalhub/SFTTrainer (target >= 1.0).

Run (from the repository root)::

    .venv/bin/python scripts/bench_train.py --task text-generation --steps 20 --repeats 2 --json bench_train_gen.json
    .venv/bin/python scripts/bench_train.py --task text-generation --quick   # tiny random Llama, smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.bench_generate import model_folder  # noqa: E402
from scripts.bench_train import alternate, machine_info, quiet, timed_window  # noqa: E402

TASK = "text-generation"
INSTALL = '.venv/bin/pip install "trl==1.16.0"'
LR, WEIGHT_DECAY, WARMUP_RATIO, MAX_GRAD_NORM, SEED = 2e-4, 0.01, 0.1, 1.0, 42
DEFAULTS = {"steps": 20, "batch_size": 4, "max_length": 384, "repeats": 2}
QUICK = {"steps": 8, "batch_size": 4, "max_length": 128, "repeats": 1}
NOT_EQUALISED = [
    "the loss: SFTTrainer's fused LM head (logits in vocabulary tiles, recomputed in the backward; on CPU at "
    "every position) against evalhub's model(**batch).loss (full logits, one cross-entropy)",
    "SFTTrainer computes entropy and token accuracy every step and passes use_cache=False",
    "over-long rows: evalhub cuts the prompt's start, SFTTrainer the end (see rows_over_max_length)",
    "LoRA initial values (drawn at different points of the RNG stream)",
]

# SmolLM2's ChatML turn, as its template and the test fixture's write it ('\n' a newline or escaped). trl adds
# markers only to templates it ships a training variant of; adding them to any template is asked for in
# huggingface/trl#4879, so the benchmark marks this one itself.
CHATML_TURN = re.compile(r"\{\{-?\s*'<\|im_start\|>'\s*\+\s*message\['role'\]\s*\+\s*'(?:\n|\\n)'\s*\+\s*"
                         r"message\['content'\]\s*\+\s*'<\|im_end\|>'\s*\+\s*'(?:\n|\\n)'\s*-?\}\}")
ASSISTANT_TURN = ("{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' }}{% generation %}"
                  "{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\n' }}{% else %}")


# --------------------------------------------------------------------------- arguments

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench_train.py --task text-generation", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=[TASK], default=TASK, help=argparse.SUPPRESS)
    p.add_argument("--model", default="smollm2", help="smollm2 (default) or a saved causal LM folder")
    p.add_argument("--data", default="support-chat", help="chat data source (default: support-chat)")
    p.add_argument("--home", help="store whose cache/models holds the converted smollm2 "
                                  "(default: $EVALHUB_HOME or ./.evalhub)")
    p.add_argument("--steps", type=int, help=f"optimizer steps per run (default {DEFAULTS['steps']})")
    p.add_argument("--batch-size", type=int, help=f"conversations per step (default {DEFAULTS['batch_size']})")
    p.add_argument("--max-length", type=int, help=f"tokens per conversation (default {DEFAULTS['max_length']})")
    p.add_argument("--repeats", type=int, help=f"alternation rounds (default {DEFAULTS['repeats']})")
    p.add_argument("--timing-warmup", type=int, default=3, help="steps excluded from timing (default 3)")
    p.add_argument("--json", type=Path, help="write all figures to this file")
    p.add_argument("--quick", action="store_true", help="tiny random Llama and a tiny chat file (smoke run)")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < args.timing_warmup + 2:
        p.error(f"--steps must be at least --timing-warmup + 2 = {args.timing_warmup + 2}")
    return args


# --------------------------------------------------------------------------- shared pieces

def run_config(args: argparse.Namespace) -> Any:
    from hub.run_config import parse_run_config

    return parse_run_config({
        "task": TASK, "seed": SEED,
        "model": {"name": args.model_dir, "max_length": args.max_length},
        "data": {"source": args.data},
        "peft": {"method": "lora"},
        "train": {"learning_rate": LR, "batch_size": args.batch_size, "max_steps": args.steps,
                  "optimizer": "adamw", "scheduler": "linear", "warmup_ratio": WARMUP_RATIO,
                  "weight_decay": WEIGHT_DECAY, "max_grad_norm": MAX_GRAD_NORM, "packing": False,
                  "log_every": args.steps},
        "tracking": {"report_to": []},
    }, where="bench")


def training_template(template: str) -> str:
    """``template`` (ChatML as SmolLM2 writes it) with each assistant turn's content and ``<|im_end|>``
    between ``{% generation %}`` markers, which SFTTrainer's ``assistant_only_loss`` needs."""
    if re.search(r"\{%-?\s*generation\s*-?%\}", template):
        return template
    turn = CHATML_TURN.search(template)
    if turn is None:
        raise SystemExit("bench_train --task text-generation: the model's chat template is not SmolLM2's ChatML, so "
                         "the benchmark cannot mark its assistant turns for SFTTrainer; use smollm2 or a ChatML model")
    return template[:turn.start()] + ASSISTANT_TURN + turn.group(0) + "{% endif %}" + template[turn.end():]


class BatchLog:
    """Wraps a collate function and logs every batch: rows, padded width and labelled tokens."""

    def __init__(self, collate: Any) -> None:
        self.collate, self.batches = collate, []

    def __call__(self, rows: list[dict]) -> dict:
        batch = self.collate(rows)
        rows_n, width = batch["input_ids"].shape
        self.batches.append({"rows": int(rows_n), "width": int(width),
                             "labelled": int((batch["labels"] != -100).sum())})
        return batch


@contextlib.contextmanager
def logged_batches():
    """Patch the generation loop's ``make_collator`` so that its batches are logged."""
    import tasks.text_generation.encode as encode

    original, logs = encode.make_collator, []

    def make(*a: Any, **kw: Any) -> BatchLog:
        logs.append(BatchLog(original(*a, **kw)))
        return logs[-1]

    encode.make_collator = make
    try:
        yield logs
    finally:
        encode.make_collator = original


def figures(args: argparse.Namespace, stamps: dict[int, float], batches: list[dict], trainable: dict) -> dict:
    """Timed-window figures of one run, its steps, trainable parameters and the training batches."""
    train = batches[:args.steps]                          # the validation batches (evalhub) come after
    window = train[args.timing_warmup:args.steps - 1]     # the steps between the window's first and last stamp
    elapsed = stamps[args.steps - 1] - stamps[args.timing_warmup]
    return {**timed_window(stamps, args), "steps": max(stamps), "trainable": trainable,
            "padded_tokens_per_s": sum(b["rows"] * b["width"] for b in window) / elapsed,
            "labelled_tokens_per_s": sum(b["labelled"] for b in window) / elapsed,
            "batches": [[b["width"], b["labelled"]] for b in train]}


def trainable_of(model: Any) -> dict:
    """Counted as evalhub's train summary counts them (``hub.variant_save``)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "fraction": trainable / max(total, 1)}


# --------------------------------------------------------------------------- the candidates

def run_evalhub(args: argparse.Namespace, data: Any) -> dict:
    """One evalhub text-generation run (LoRA) in a fresh temporary store."""
    from hub.store import Store
    from tasks.text_generation.train import train

    cfg, stamps = run_config(args), {}

    def on_step(step: int, logs: dict) -> None:
        stamps[step] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-gen-evalhub-") as tmp, logged_batches() as logs:
        store = Store(Path(tmp) / "home")
        variant_id = train(cfg, store, show_progress=False, on_step=on_step, data=data)
        summary = store.get_variant(variant_id).train_summary
    return figures(args, stamps, logs[0].batches, summary["trainable_parameters"])


def run_sft_trainer(args: argparse.Namespace, data: Any) -> dict:
    """One TRL ``SFTTrainer`` run on the same rows, model, LoRA and optimizer settings."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    import hub.peft_methods  # noqa: F401  (registers the methods)
    from hub.registries import PEFT_METHODS

    stamps: dict[int, float] = {}
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    if tokenizer.pad_token is None:          # as evalhub's loop does
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = training_template(tokenizer.chat_template)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32, use_safetensors=True)
    lora = PEFT_METHODS.get("lora").build({}, total_steps=args.steps, task_type="CAUSAL_LM")

    class Stamp(TrainerCallback):
        def on_step_end(self, targs: Any, state: Any, control: Any, **kw: Any) -> None:
            stamps[state.global_step] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-gen-trl-") as tmp:
        trainer = SFTTrainer(model=model, args=sft_config(args, tmp), processing_class=tokenizer, peft_config=lora,
                             train_dataset=Dataset.from_list(data.splits["train"]), callbacks=[Stamp()])
        trainer.remove_callback(PrinterCallback)  # its end-of-run summary line only
        trainer.data_collator = log = BatchLog(trainer.data_collator)
        agreement = label_agreement(trainer.train_dataset, data.splits["train"], args)
        trainer.train()
    return {**figures(args, stamps, log.batches, trainable_of(trainer.model)), **agreement}


def sft_config(args: argparse.Namespace, output_dir: str) -> Any:
    """SFTConfig (trl 1.16) matching evalhub's loop, all overhead off."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=output_dir, per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=LR, lr_scheduler_type="linear", warmup_steps=int(WARMUP_RATIO * args.steps),
        optim="adamw_torch", weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM, seed=SEED,
        # SFTConfig turns bf16 and (activation) checkpointing on by default; evalhub trains fp32 without
        bf16=False, activation_checkpointing=False,
        max_length=args.max_length, packing=False, padding_free=False, assistant_only_loss=True,
        eval_strategy="no", save_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, use_cpu=True)


def label_agreement(prepared: Any, rows: list[dict], args: argparse.Namespace) -> dict:
    """Train rows SFTTrainer tokenised and labelled exactly as evalhub's ``encode_chat`` does (with the
    model's own template), and the rows over ``--max-length`` (cut differently by the two)."""
    from transformers import AutoTokenizer

    from tasks.text_generation.encode import encode_chat

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    same = over = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # encode_chat's notice about cut rows
        for theirs, row in zip(prepared, rows):
            ours = encode_chat(tokenizer, row["messages"], 10**9)
            if len(ours["input_ids"]) > args.max_length:
                over += 1
                ours = encode_chat(tokenizer, row["messages"], args.max_length)
            same += theirs["input_ids"] == ours["input_ids"] and theirs["labels"] == ours["labels"]
    return {"label_agreement": same / len(rows), "rows_compared": len(rows), "rows_prepared": len(prepared),
            "rows_over_max_length": over}


# --------------------------------------------------------------------------- the comparison

def compare(args: argparse.Namespace, data: Any) -> dict:
    """Alternating rounds; per candidate also its trainable parameters, steps and padded tokens/s, and
    whether both trained on the same batches and labels."""
    res = alternate(args, {"evalhub": lambda a: run_evalhub(a, data),
                           "sft_trainer": lambda a: run_sft_trainer(a, data)})
    for name in ("evalhub", "sft_trainer"):
        runs = res[name]["runs"]
        res[name].update(trainable=runs[0]["trainable"], steps=runs[0]["steps"],
                         median_padded_tokens_per_s=statistics.median(r["padded_tokens_per_s"] for r in runs))
    res["ratio_padded_tokens_per_s"] = (res["evalhub"]["median_padded_tokens_per_s"]
                                        / res["sft_trainer"]["median_padded_tokens_per_s"])
    res["same_batches"] = all(e["batches"] == t["batches"]
                              for e, t in zip(res["evalhub"]["runs"], res["sft_trainer"]["runs"]))
    first = res["sft_trainer"]["runs"][0]
    res["label_agreement"] = first["label_agreement"]
    res["rows_over_max_length"] = first["rows_over_max_length"]
    return res


def print_table(res: dict) -> None:
    print("\nevalhub text-generation loop vs TRL SFTTrainer (LoRA, padding)")
    print(f"  {'candidate':12s} {'samples/s per round':>28s} {'median':>8s} {'step s':>8s} {'tokens/s':>9s} "
          f"{'trainable':>10s} {'steps':>5s}")
    for name in ("evalhub", "sft_trainer"):
        r = res[name]
        per = " ".join(f"{x:7.2f}" for x in r["samples_per_s"])
        print(f"  {name:12s} {per:>28s} {r['median_samples_per_s']:8.2f} {r['median_step_s']:8.3f} "
              f"{r['median_padded_tokens_per_s']:9.1f} {r['trainable']['trainable']:10,d} {r['steps']:5d}")
    rounds = ", ".join(f"{x:.3f}" for x in res["ratio_per_round"])
    print(f"  ratio evalhub/SFTTrainer: {res['ratio_evalhub_over_sft_trainer']:.3f} "
          f"(per round: {rounds}; target >= 1.0)")
    print(f"  ratio by median step time: {res['ratio_by_median_step']:.3f}; "
          f"by padded tokens/s: {res['ratio_padded_tokens_per_s']:.3f}")
    print(f"  same batches (widths, labelled tokens) in both: {res['same_batches']}; rows tokenised and labelled "
          f"alike: {res['label_agreement']:.1%}; rows over --max-length: {res['rows_over_max_length']}")
    print("  not equalised:")
    for line in NOT_EQUALISED:
        print(f"    - {line}")


# --------------------------------------------------------------------------- main

def quick_inputs(args: argparse.Namespace, root: Path) -> None:
    """Point --model/--data at the test fixtures' tiny random Llama and a small chat JSONL."""
    from tests.gen_fixtures import tiny_llama

    topics = ["printer", "router", "laptop", "mouse", "screen", "battery", "email", "password"]
    path = root / "chat.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(80):
            thing = topics[i % len(topics)]
            fh.write(json.dumps({"messages": [
                {"role": "user", "content": f"My {thing} number {i} does not work, what do I do?"},
                {"role": "assistant", "content": f"Restart the {thing} and check cable {i % 5}."}]}) + "\n")
    args.model, args.data = str(tiny_llama(root)), str(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import trl
    except ImportError:
        raise SystemExit(f"bench_train --task text-generation needs TRL's SFTTrainer: run `{INSTALL}`") from None
    quiet()
    with tempfile.TemporaryDirectory(prefix="bench-train-gen-") as tmp:
        if args.quick:
            quick_inputs(args, Path(tmp))
        args.model_dir = str(model_folder(args.model, args.home))
        return run_all(args, trl.__version__)


def run_all(args: argparse.Namespace, trl_version: str) -> int:
    from tasks.text_generation.data import load_chat_data

    data = load_chat_data(run_config(args).data)
    report: dict[str, Any] = {"machine": {**machine_info(), "trl": trl_version}, "settings": {
        k: getattr(args, k) for k in ("model", "data", "steps", "batch_size", "max_length", "repeats",
                                      "timing_warmup", "quick")}}
    report["settings"].update(task=TASK, model_dir=args.model_dir, train_rows=len(data.splits["train"]),
                              peft="lora", learning_rate=LR, weight_decay=WEIGHT_DECAY, warmup_ratio=WARMUP_RATIO,
                              max_grad_norm=MAX_GRAD_NORM, seed=SEED, packing=False, not_equalised=NOT_EQUALISED)
    m = report["machine"]
    print(f"bench_train {TASK}: {m['cpus_usable']} CPUs, {m['torch_threads']} torch threads, torch {m['torch']}, "
          f"transformers {m['transformers']}, trl {trl_version}, load {m['loadavg_at_start'][0]:.2f}; "
          f"{args.steps} steps x batch {args.batch_size} x <= {args.max_length} tokens, {args.repeats} rounds")
    print("\n[1] evalhub vs SFTTrainer, alternating", flush=True)
    report["loop_vs_sft_trainer"] = compare(args, data)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    print_table(report["loop_vs_sft_trainer"])
    print("\nTimings drift when other jobs share the CPUs; read the ratios, not the absolute figures.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
