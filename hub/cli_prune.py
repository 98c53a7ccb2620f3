"""`evalhub prune`: structured pruning of a stored variant, recovered by distillation, as a new variant.

Split from :mod:`hub.cli` to keep it small. The pruning itself belongs to the variant's task and
is found by name in :data:`hub.registries.PRUNERS` (text-classification registers
``tasks.text_classification.recover:prune``); this module parses, runs the new variant's suite and
prints what was made.
"""

from __future__ import annotations

import argparse
import math

from hub.cli import _emit, _store
from hub.errors import UserError


def add_prune_parser(command: object) -> None:
    p = command("prune", help="remove attention heads and FFN neurons of a variant, recover by distillation, "
                              "store the result as a new variant and score it")
    p.add_argument("variant")
    p.add_argument("--heads", type=_share, default=0.3, metavar="SHARE",
                   help="share of all attention heads to remove, in [0, 1) (default 0.3; every layer keeps one)")
    p.add_argument("--ffn", type=_share, default=0.3, metavar="SHARE",
                   help="share of each layer's FFN neurons to remove, in [0, 1) (default 0.3)")
    p.add_argument("--method", choices=["taylor", "magnitude"], default="taylor",
                   help="importance: taylor (|dL/dgate| on the training split, Michel et al. 2019) or weight magnitude")
    p.add_argument("--head-scope", choices=["global", "layer"], default="global",
                   help="global: rank heads across layers (layers end uneven); layer: remove the share from every "
                        "layer (even layers)")
    p.add_argument("--recover-steps", type=int, default=100, metavar="N",
                   help="optimizer steps of distillation from the unpruned variant (0: none; default 100)")
    p.add_argument("--temperature", type=float, default=2.0, help="distillation temperature T (default 2)")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="weight of the KL term (times T^2); 1 - alpha weighs the task loss (default 0.5)")
    p.add_argument("--learning-rate", type=float, default=5e-5, help="recovery learning rate (default 5e-5)")
    p.add_argument("--no-eval", action="store_true", help="skip the new variant's default suite")
    p.set_defaults(func=cmd_prune)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:   # nan fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a share in [0, 1) (0.3 removes 30%)")
    return value


def cmd_prune(args: argparse.Namespace) -> int:
    from evaluators.runner import run_suite
    from hub.registries import PRUNERS

    store = _store(args, write=True)
    parent = store.get_variant(args.variant)
    if parent.task not in PRUNERS:
        raise UserError(f"variant {parent.id} is a {parent.task} model; `evalhub prune` supports "
                        f"{', '.join(PRUNERS.names())} variants")
    variant_id = PRUNERS.get(parent.task)(
        store, parent.id, heads=args.heads, ffn=args.ffn, method=args.method, recover_steps=args.recover_steps,
        temperature=args.temperature, alpha=args.alpha, learning_rate=args.learning_rate, head_scope=args.head_scope,
        show_progress=not args.json)
    payload = {"variant": variant_id}
    if not args.no_eval and isinstance(parent.run_config.get("data"), dict):   # a pulled variant may have no data
        evaluation = parent.run_config.get("eval") or {}
        payload["run"] = run_suite(store, variant_id, evaluation.get("suite", "default"),
                                   split=evaluation.get("split", "test"), batch_size=evaluation.get("batch_size", 64),
                                   bootstrap=evaluation.get("bootstrap", 1000), progress=not args.json,
                                   log=(lambda *a: None) if args.json else print)
    _emit(args, payload, "\n".join(f"{k} {v}" for k, v in payload.items()))
    return 0
