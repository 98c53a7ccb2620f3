"""The `evalhub` command line.

Every command that changes the store prints the ids it made (``--json`` prints them as
JSON). A user mistake prints one line on stderr and exits 2; bugs raise as usual. Every
line printed goes through :func:`hub.errors.clean` or :func:`hub.errors.escape_controls`:
an id or a name never reaches the terminal with a control character, a secret or, in a
message, whole when it is long. A command that stores something first probes that it can
(:meth:`hub.store.Store.check_writable`), so a read-only or full store fails before the work.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from typing import Any, Sequence

from hub.errors import UserError, clean, escape_controls, mask_secrets, quote


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every user mistake
        self.exit(2, f"{self.prog}: error: {clean(message)} (see `{self.prog} --help`)\n")


def _port(text: str) -> int:
    """A TCP port for --port (or GRADIO_SERVER_PORT, its default): 1-65535."""
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a port number (1-65535); pass --port N or fix "
                                         "GRADIO_SERVER_PORT")
    return port


def _default_port() -> str:
    # a string: argparse runs _port on it only when serve or demo is parsed without --port,
    # so a bad GRADIO_SERVER_PORT breaks those two commands with one line, and no other
    return os.environ.get("GRADIO_SERVER_PORT") or "7860"


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """UserError when ``port`` cannot be served on (another program listens there)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be opened ({exc.strerror})"
            raise UserError(f"port {port} on {host} {reason}; pass --port with a free port "
                            "(or stop the program on it)") from None


def _store(args: argparse.Namespace, *, write: bool = False, db: str | None = None) -> Any:
    """The store of --home and --db (else ``db``, from an app config); ``write``: probe now that this
    command can store what it makes."""
    from hub.store import Store

    store = Store(args.home, db=args.db or db)
    if write:
        store.check_writable()
    elif store.root.exists() and not store.root.is_dir():   # found now, not after a training run
        raise UserError(f"the store {clean(store.root, 200)} is a file, not a folder; give --home "
                        "(or EVALHUB_HOME) a folder")
    return store


def _print(text: str) -> None:
    """Print lines of output: each line's control characters escaped, secrets masked."""
    print("\n".join(escape_controls(mask_secrets(line)) for line in str(text).split("\n")))


def _emit(args: argparse.Namespace, payload: dict, text: str) -> None:
    _print(json.dumps(payload) if args.json else text)


def cmd_validate(args: argparse.Namespace) -> int:
    from hub.run_config import load_run_config

    from hub.registries import TASKS

    cfg = load_run_config(args.config)
    TASKS.get(cfg.task).check(cfg)   # what training would find: model, PEFT options, trackers, data, eval split
    _emit(args, {"config": args.config, "valid": True, "config_hash": cfg.hash()},
          f"{args.config}: valid ({cfg.task}, model {cfg.model.name}, data {cfg.data.source}, "
          f"peft {cfg.peft.method}, config hash {cfg.hash()})")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from evaluators.runner import run_suite
    from hub.registries import TASKS
    from hub.run_config import load_run_config

    cfg = load_run_config(args.config)
    task = TASKS.get(cfg.task)
    data = task.check(cfg)   # everything the run needs, before it starts: nothing is stored when this fails
    store = _store(args, write=True)
    variant_id = task.train(cfg, store, resume=args.resume, data=data)
    if variant_id is None:  # a non-main process under accelerate launch
        return 0
    payload = {"variant": variant_id}
    if not args.no_eval:
        payload["run"] = run_suite(store, variant_id, cfg.eval.suite, split=cfg.eval.split,
                                   batch_size=cfg.eval.batch_size, bootstrap=cfg.eval.bootstrap)
    _emit(args, payload, "\n".join(f"{k} {v}" for k, v in payload.items()))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from evaluators.runner import run_suite

    run_id = run_suite(_store(args, write=True), args.variant, args.suite, split=args.split, engine=args.engine,
                       batch_size=args.batch_size, bootstrap=args.bootstrap)
    _emit(args, {"run": run_id}, f"run {run_id}")
    return 0


def cmd_build_engine(args: argparse.Namespace) -> int:
    from hub.engines.build import build_engine

    options = dict(_parse_option(o) for o in args.option)
    say = (lambda *a: None) if args.json else print
    engine_id = build_engine(_store(args, write=True), args.variant, args.backend, args.precision, options=options, log=say)
    _emit(args, {"engine": engine_id}, f"engine {engine_id}")
    return 0


def _parse_option(text: str) -> tuple[str, Any]:
    from hub.config import load_yaml_text

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UserError(f"--option {quote(text)}: expected KEY=VALUE, e.g. --option quantization=static")
    try:
        return key.strip(), load_yaml_text(value, "")
    except UserError as exc:
        raise UserError(f"--option {quote(text)}: the value is not valid YAML ({str(exc).lstrip(': ')}); "
                        "quote it") from None


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    variants = store.list_variants()
    engines: dict[str, list] = {}
    for engine in store.list_engines():
        engines.setdefault(engine.variant_id, []).append(engine)
    if args.json:
        _print(json.dumps([{"id": v.id, "name": v.name, "task": v.task, "base_model": v.base_model,
                           "peft_method": v.peft_method, "dataset": v.dataset.get("source"),
                           "engines": [e.id for e in engines.get(v.id, [])]} for v in variants]))
        return 0
    if not variants:
        print("no variants yet: run `evalhub train CONFIG.yaml` or `evalhub demo`")
    for v in variants:
        missing = "" if store.variant_path(v.id).is_dir() else "  (folder missing)"
        _print(f"{v.id:<48} {v.peft_method:<14} {v.base_model:<12} {v.dataset.get('source')}{missing}")
        for e in engines.get(v.id, []):
            verdict = "parity passed" if e.parity.get("passed") else "parity FAILED"
            _print(f"  engine {e.id:<40} {verdict}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from hub.report import describe_variant

    store = _store(args)
    record = store.get_variant(args.variant)
    runs = store.runs(record.id)
    metrics = {r["id"]: store.metrics(r["id"]) for r in runs}
    engines = store.list_engines(record.id)
    if args.json:
        _print(json.dumps({"variant": asdict(record), "runs": runs, "metrics": metrics,
                           "engines": [asdict(e) for e in engines], "pushes": store.pushes(record.id)}, default=str))
    else:
        _print(describe_variant(record, runs, metrics, engines, pushes=store.pushes(record.id)))
        if not store.variant_path(record.id).is_dir():
            _print(f"warning: its folder is missing from the store; `evalhub remove {record.id}` removes its rows")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from hub.report import format_rows

    rows = _store(args).leaderboard()
    fmt = "json" if args.json else args.format
    if not rows and fmt == "table":
        print("the leaderboard is empty: evaluate a variant with `evalhub eval VARIANT`")
        return 0
    _print(format_rows(rows, fmt))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from evaluators.compare import PairingError, paired_comparison
    from hub.compare_rows import format_comparison, payload, resolve_pair

    store = _store(args)
    a, b = resolve_pair(store, args.row_a, args.row_b, args.split)
    try:
        paired = paired_comparison(store.predictions(a.run["id"]), store.predictions(b.run["id"]))
    except PairingError as exc:
        raise UserError(f"{quote(args.row_a)} and {quote(args.row_b)} cannot be paired: {exc}") from None
    made = payload(store, args.split, a, b, paired.to_dict())
    _print(json.dumps(made) if args.json or args.format == "json" else format_comparison(made))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    store = _store(args, write=True)
    record = store.get_variant(args.variant)
    if record.id != args.variant:   # removal is for good: a prefix or a name is not enough
        raise UserError(f"{quote(args.variant)} is {record.id}; give its whole id to remove it")
    counts = store.remove_variant(record)
    _emit(args, {"removed": record.id, **counts},
          f"removed {record.id} ({counts['runs']} runs, {counts['engines']} engines)")
    return 0


def _serve_options(args: argparse.Namespace) -> dict:
    """The app config, the sign-in and the address of `serve` (and `demo`), checked before serving."""
    from hub.ui.app_config import AppConfig, load_app_config
    from hub.ui.auth import load_auth, warn_open_host

    config = load_app_config(args.app_config) if args.app_config else AppConfig()
    auth = load_auth(args.auth, args.auth_file)
    if args.share:
        from hub.ui.share import check_share

        check_share()
    host = args.host
    if auth is None:
        warn_open_host(host)
    check_port(args.port, host if host not in ("0.0.0.0", "::") else "0.0.0.0")
    return {"config": config, "auth": auth, "server_name": host, "port": args.port, "share": args.share}


def cmd_serve(args: argparse.Namespace) -> int:
    from hub.ui.app import launch

    options = _serve_options(args)
    store = _store(args, db=options["config"].db)
    try:
        launch(store, **options)
    except OSError as exc:   # taken between the check and the launch
        if "port" not in str(exc).lower():
            raise
        check_port(args.port)
        raise
    return 0


def cmd_export_space(args: argparse.Namespace) -> int:
    from hub.space_export import export_space

    made = export_space(_store(args), args.out_dir, kind=args.kind, variants=args.variant, engine=args.engine)
    _emit(args, made, f"space {made['folder']} ({made['kind']}: {', '.join(made['variants']) or 'no variants'})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    serve = None if args.no_serve else _serve_options(args)   # found now, not after ten minutes of training
    payload = run_demo(_store(args, write=True, db=serve and serve["config"].db), serve=serve, json_out=args.json)
    if args.json:
        print(json.dumps(payload))
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from hub.ui.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.user}: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    print(f"{args.user}:{hash_password(password)}")
    return 0


DB_HELP = ("results database, a SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
           "(default: $EVALHUB_DB, else the store's results.db)")


def build_parser() -> argparse.ArgumentParser:
    from hub.suites import available_suites
    from hub.cli_hub import cmd_pull, cmd_push, cmd_push_space
    from hub.engines.base import PRECISIONS
    from hub.cli_prune import add_prune_parser
    from hub.cli_queue import add_queue_parsers

    parser = _Parser(prog="evalhub", description="Fine-tune, evaluate and demo transformer models.")
    parser.add_argument("--home", help="store folder (default: $EVALHUB_HOME or ./.evalhub)")
    parser.add_argument("--db", metavar="URL", help=DB_HELP)
    parser.add_argument("--json", action="store_true", help="print results and made ids as JSON")
    # the same three options after the subcommand (`evalhub list --json`); SUPPRESS keeps one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS, help="store folder (default: $EVALHUB_HOME or ./.evalhub)")
    common.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help=DB_HELP)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print results and made ids as JSON")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    p = command("validate", help="check a run config without running it")
    p.add_argument("config")
    p.set_defaults(func=cmd_validate)

    p = command("train", help="fine-tune a variant from a YAML run config, then evaluate it")
    p.add_argument("config")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of this config")
    p.add_argument("--no-eval", action="store_true", help="skip the config's evaluation suite")
    p.set_defaults(func=cmd_train)

    p = command("eval", help="run an evaluation suite on a variant")
    p.add_argument("variant")
    p.add_argument("--suite", default=None,
                   help=f"a built-in suite ({', '.join(available_suites())}) or the path of a suite YAML file "
                        "(default: the variant's task's own: 'default' for text-classification, 'generation' "
                        "for text-generation)")
    p.add_argument("--split", default="test")
    p.add_argument("--engine", default=None,
                   help="engine id, a backend name for the variant's latest engine of it, or 'best' for "
                        "its newest engine that passed parity (default: the torch model)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for confidence intervals")
    p.set_defaults(func=cmd_eval)

    p = command("build-engine", help="build an optimized inference engine of a variant, with parity and latency reports")
    p.add_argument("variant")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "openvino", "tensorrt"])
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="numeric precision; each backend builds some of them (int4: text-generation's onnxruntime "
                        "engines); ignored by --backend auto, which measures them all")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, e.g. quantization=static, mode=throughput (repeatable)")
    p.set_defaults(func=cmd_build_engine)

    add_prune_parser(command)
    add_queue_parsers(command)

    p = command("list", help="list variants in the store")
    p.set_defaults(func=cmd_list)

    p = command("show", help="a variant's lineage and results")
    p.add_argument("variant")
    p.set_defaults(func=cmd_show)

    p = command("leaderboard", help="every variant and its latest metrics")
    p.add_argument("--format", choices=["table", "csv", "json", "markdown"], default="table")
    p.set_defaults(func=cmd_leaderboard)

    p = command("compare", help="two leaderboard rows side by side, with a paired significance test")
    p.add_argument("row_a", metavar="ROW_A", help="VARIANT (its torch model) or VARIANT@ENGINE, as the leaderboard shows it")
    p.add_argument("row_b", metavar="ROW_B", help="the row to compare with ROW_A (deltas are B - A)")
    p.add_argument("--split", default="test")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_compare)

    def serve_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--port", type=_port, default=_default_port(), help="port (default: $GRADIO_SERVER_PORT or 7860)")
        p.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 for every "
                            "interface, with --auth)")
        p.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                       help="require sign-in as USER with PASS (repeatable); prefer --auth-file, which "
                            "keeps the password out of `ps`")
        p.add_argument("--auth-file", metavar="FILE",
                       help="sign-in accounts, one `user:password` or `user:scrypt$salt$hash` per line "
                            "(make a hash with `evalhub hash-password`)")
        p.add_argument("--share", action="store_true", help="a public gradio.live link (needs internet)")
        p.add_argument("--app-config", metavar="FILE",
                       help="YAML: title, description, logo, tabs, the variants on show (see README)")

    p = command("serve", help="the Gradio app: leaderboard, demo, compare, inspect, model card")
    serve_options(p)
    p.set_defaults(func=cmd_serve)

    p = command("demo", help="the main job: fine-tune, evaluate and serve on the embedded default")
    p.add_argument("--no-serve", action="store_true", help="console only: train, score and print, no app")
    serve_options(p)
    p.set_defaults(func=cmd_demo)

    p = command("push", help="push a variant (weights, card with its results, engines) to the Hugging Face Hub")
    p.add_argument("variant")
    p.add_argument("--repo-id", required=True, help="the Hub repo, e.g. my-org/news-topics-lora")
    p.add_argument("--private", action="store_true", help="create the repo private (when it does not exist)")
    p.add_argument("--revision", default=None, help="push to this branch (created if missing; default main)")
    p.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing to the branch")
    p.add_argument("--engine", action="append", default=[], metavar="ENGINE",
                   help="also push this engine of the variant, under engines/<backend>-<precision>/ (repeatable)")
    p.add_argument("--no-weights", action="store_true", help="push the card (and engines) only, not the model")
    p.add_argument("--commit-message", default=None, help="the commit message (default: says what was pushed)")
    p.set_defaults(func=cmd_push)

    p = command("push-space", help="upload a folder made by `evalhub export-space` as a Gradio Space")
    p.add_argument("space_dir", metavar="SPACE_DIR")
    p.add_argument("--repo-id", required=True, help="the Space, e.g. my-org/topic-models")
    p.add_argument("--private", action="store_true", help="create the Space private (when it does not exist)")
    p.set_defaults(func=cmd_push_space)

    p = command("pull", help="bring a Hub model, a PEFT adapter repo or a save_pretrained folder in as a variant")
    p.add_argument("source", metavar="REPO_ID_OR_FOLDER")
    p.add_argument("--revision", default=None, help="a branch, tag or commit of the Hub repo")
    p.add_argument("--task", default="text-classification", help="the task the model does (default text-classification)")
    p.add_argument("--name", default=None, help="the variant's name (default: from the repo id or folder)")
    p.add_argument("--data", default=None, metavar="SOURCE",
                   help="the dataset to score it on (a built-in name such as bbc-news, or a file/folder, as in a "
                        "run config's data.source); its labels must match the model's (or --label-map)")
    p.add_argument("--label-map", action="append", default=[], metavar="MODEL_LABEL=DATA_LABEL",
                   help="map a label of the model's config.id2label to a dataset label (repeatable)")
    p.set_defaults(func=cmd_pull)

    p = command("hash-password", help="a salted hash of a password for --auth-file (reads it from stdin)")
    p.add_argument("user", help="the account name the line is for")
    p.set_defaults(func=cmd_hash_password)

    p = command("export-space", help="write a self-contained Hugging Face Space folder of chosen variants")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write (must not exist, or be empty)")
    p.add_argument("--kind", choices=["hub", "leaderboard", "demo"], default="hub",
                   help="hub: every tab; leaderboard: the leaderboard only; demo: the demo only")
    p.add_argument("--variant", action="append", default=[], metavar="V",
                   help="a variant to include (repeatable; default: every variant)")
    p.add_argument("--engine", default=None, metavar="E",
                   help="the engine the demo serves (default: each variant's best engine, else its torch model)")
    p.set_defaults(func=cmd_export_space)

    p = command("remove", help="delete a variant: its rows (runs, engines, results) and its folder")
    p.add_argument("variant", help="the variant's whole id")
    p.set_defaults(func=cmd_remove)
    return parser


def _disk_fault(exc: BaseException) -> int | None:
    """The errno of a full or read-only disk behind ``exc`` (safetensors and torch wrap it in their
    own error types, keeping only the text), or None when it is something else."""
    faults = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
    if isinstance(exc, OSError) and exc.errno in faults:
        return exc.errno
    text = str(exc)
    return next((code for code in faults if os.strerror(code) in text or f"os error {code})" in text), None)


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    # peft still calls a transformers property deprecated for v6; nothing for a user to act on.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"evalhub: error: {clean(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        code = _disk_fault(exc)
        if code is None:
            raise
        where = f" while writing {clean(exc.filename, 200)}" if getattr(exc, "filename", None) else ""
        print(f"evalhub: error: {os.strerror(code).lower()}{where}; free space (or make the store writable) "
              "and rerun: the store is as it was before this command (its partial folder was removed)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("evalhub: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `evalhub show X | head`: the reader left; nothing to report
        sys.stderr = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
