"""The Hub commands of the `evalhub` command line: `push`, `push-space` and `pull`.

Split from :mod:`hub.cli` (which parses them and handles errors) to keep it small; the work
itself lives in :mod:`hub.publish` and :mod:`hub.pull`.
"""

from __future__ import annotations

import argparse
import sys

from hub.cli import _emit, _store
from hub.errors import UserError, quote


def cmd_push(args: argparse.Namespace) -> int:
    from hub.publish import push_variant

    store = _store(args, write=True)   # the push is recorded in the store
    say = (lambda *a: None) if args.json else (lambda line: print(line, file=sys.stderr))
    made = push_variant(store, args.variant, repo_id=args.repo_id, private=args.private, revision=args.revision,
                        create_pr=args.create_pr, engines=args.engine, weights=not args.no_weights,
                        commit_message=args.commit_message, log=say)
    _emit(args, made, f"pushed {made['variant']} to {made['url']}"
          + (f" (commit {made['commit']})" if made.get("commit") else " (nothing changed: no commit made)"))
    return 0


def cmd_push_space(args: argparse.Namespace) -> int:
    from hub.publish import push_space

    made = push_space(args.space_dir, repo_id=args.repo_id, private=args.private)
    _emit(args, made, f"space {made['url']}" + (f" (commit {made['commit']})" if made.get("commit") else ""))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from hub.pull import pull_model

    store = _store(args, write=True)
    label_map = dict(_parse_label_map(item) for item in args.label_map)
    variant_id = pull_model(store, args.source, revision=args.revision, task=args.task, name=args.name,
                            data=args.data, label_map=label_map)
    _emit(args, {"variant": variant_id}, f"variant {variant_id}")
    return 0


def _parse_label_map(text: str) -> tuple[str, str]:
    model_label, sep, data_label = text.partition("=")
    if not sep or not model_label.strip() or not data_label.strip():
        raise UserError(f"--label-map {quote(text)}: expected MODEL_LABEL=DATA_LABEL, e.g. --label-map LABEL_0=business")
    return model_label.strip(), data_label.strip()
