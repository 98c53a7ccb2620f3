"""`evalhub submit`, `jobs`, `cancel` and `worker`: the team queue from the command line.

Split from :mod:`hub.cli` to keep it small; the queue itself is :mod:`hub.queue`. A
submission is checked when it is made (:mod:`hub.queue.submit`), so a variant, suite, engine
or backend that does not exist is one line and exit 2, before anything is queued.
"""

from __future__ import annotations

import argparse
import getpass
import json
import signal
from typing import Any

from hub.cli import _emit, _parse_option, _print, _store
from hub.errors import UserError, quote
from hub.queue.states import STATUSES


def add_queue_parsers(command: Any) -> None:
    from hub.engines.base import PRECISIONS
    from hub.queue.submit import BUILD_BACKENDS

    p = command("submit", help="queue an evaluation or an engine build for a worker (`evalhub worker`)")
    kinds = p.add_subparsers(dest="kind", required=True, parser_class=type(p))

    def job_options(q: argparse.ArgumentParser) -> None:
        q.add_argument("variant")
        q.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
        q.add_argument("--max-attempts", type=int, default=3,
                       help="attempts before a job whose worker keeps dying is FAILED (default 3)")
        q.add_argument("--resource", action="append", default=[], metavar="NAME[=N]",
                       help="a Ray custom resource the job needs (repeatable), e.g. openvino: runs it on a node "
                            "started with --resources '{\"openvino\": 1}'")
        for name in ("--home", "--db"):   # the common options also after `submit KIND` (the top parser shows them)
            q.add_argument(name, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        q.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    q = kinds.add_parser("eval", help="queue `evalhub eval VARIANT --suite S`")
    job_options(q)
    q.add_argument("--suite", action="append", default=[],
                   help="a suite to run (repeatable: one job each; default: the variant's task's own)")
    q.add_argument("--engine", default=None, help="engine id, backend name or 'best' (default: the torch model)")
    q.add_argument("--split", default="test")
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("--bootstrap", type=int, default=1000)
    q = kinds.add_parser("build-engine", help="queue `evalhub build-engine VARIANT --backend B`")
    job_options(q)
    q.add_argument("--backend", required=True, choices=BUILD_BACKENDS)
    q.add_argument("--precision", default="fp32", choices=PRECISIONS)
    q.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="backend option (repeatable)")
    p.set_defaults(func=cmd_submit)

    p = command("jobs", help="the queue: jobs and their status, newest first")
    p.add_argument("--status", action="append", default=[], type=str.upper, choices=STATUSES,
                   help="only jobs in this state (repeatable)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.set_defaults(func=cmd_jobs)

    p = command("cancel", help="cancel a queued job (a running one stops at its worker's next heartbeat)")
    p.add_argument("job", help="job id (or a unique start of it)")
    p.set_defaults(func=cmd_cancel)

    p = command("worker", help="claim and run queued jobs until stopped")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: in this process, one job at a time (default); ray: as Ray tasks (evalhub[ray])")
    p.add_argument("--address", default=None,
                   help="the Ray cluster to join (default: $RAY_ADDRESS, else a Ray started for this worker)")
    p.add_argument("--workers", type=int, default=None,
                   help="ray: jobs running at once (default: the cluster's CPUs)")
    p.add_argument("--once", action="store_true", help="run the jobs waiting now, then exit")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between looks at an empty queue (default 2)")
    p.add_argument("--heartbeat", type=float, default=10.0,
                   help="seconds between heartbeats of a running job (default 10; a job silent for "
                        "$EVALHUB_QUEUE_STALE_S, default 60, is taken back)")
    p.set_defaults(func=cmd_worker)


def _resources(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, amount = item.partition("=")
        try:
            out[name.strip()] = float(amount) if amount else 1.0
        except ValueError:
            raise UserError(f"--resource {quote(item)}: expected NAME or NAME=NUMBER, e.g. --resource openvino"
                            ) from None
        if not name.strip():
            raise UserError(f"--resource {quote(item)}: the resource has no name")
    return out


def _submitter() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):   # no user name in a container without a passwd entry
        return ""


def cmd_submit(args: argparse.Namespace) -> int:
    from hub.queue.db import open_queue
    from hub.queue.submit import submit_build, submit_eval

    store = _store(args)
    store.get_variant(args.variant)   # a variant that does not exist is refused before the queue is made
    queue = open_queue(store)
    common = {"resources": _resources(args.resource), "submitted_by": _submitter(), "priority": args.priority,
              "max_attempts": args.max_attempts}
    if args.kind == "eval":
        made = [submit_eval(store, queue, args.variant, suite, engine=args.engine, split=args.split,
                            batch_size=args.batch_size, bootstrap=args.bootstrap, **common)
                for suite in (args.suite or [None])]
    else:
        options = dict(_parse_option(o) for o in args.option)
        made = [submit_build(store, queue, args.variant, args.backend, precision=args.precision, options=options,
                             **common)]
    _emit(args, {"jobs": [{"job": job.id, "status": job.status, "submission": what} for job, what in made]},
          "\n".join(f"job {job.id} {job.status.lower()}" + ("" if what == "created" else f" ({what})")
                    for job, what in made))
    return 0


def _age(seconds: float | None) -> str:
    import time

    if seconds is None:
        return "-"
    ago = time.time() - seconds
    return f"{ago:.0f}s" if ago < 120 else f"{ago / 60:.0f}m" if ago < 7200 else f"{ago / 3600:.0f}h"


def cmd_jobs(args: argparse.Namespace) -> int:
    from hub.queue.db import open_queue

    queue = open_queue(_store(args), create=False)
    jobs = queue.list(args.status, limit=args.limit) if queue else []
    if args.json:
        _print(json.dumps([job.to_dict() for job in jobs], default=str))
        return 0
    if not jobs:
        print("no jobs" + (f" {'/'.join(args.status)}" if args.status else "") +
              ": queue one with `evalhub submit eval VARIANT`")
    for job in jobs:
        what = job.suite if job.kind == "eval" else job.engine
        line = (f"{job.id:<17} {job.status:<9} {job.kind:<12} {job.variant_id:<40} {what:<16} "
                f"{_age(job.created_at):>5} {job.attempts}/{job.max_attempts} {job.result_id or ''}")
        _print(line.rstrip())
        if job.error and job.status != "FINISHED":
            _print(f"  {job.error}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from hub.queue.db import open_queue

    queue = open_queue(_store(args), create=False)
    if queue is None:
        raise UserError(f"no job {quote(args.job)}; the queue is empty")
    job, before = queue.cancel(args.job)
    note = " (its worker stops it at its next heartbeat)" if before == "RUNNING" else ""
    _emit(args, {"job": job.id, "status": job.status, "was": before}, f"job {job.id} cancelled{note}")
    return 0


def _interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_worker(args: argparse.Namespace) -> int:
    from hub.queue.db import open_queue

    if args.poll <= 0 or args.heartbeat <= 0:
        raise UserError("--poll and --heartbeat take a number of seconds above 0")
    store = _store(args)
    queue = open_queue(store)
    if args.heartbeat * 2 > queue.stale_s:
        raise UserError(f"--heartbeat {args.heartbeat:g}: a job silent for {queue.stale_s:g} s is taken back "
                        "(EVALHUB_QUEUE_STALE_S), so beat at most every half of that")
    say = (lambda *a: None) if args.json else _print
    signal.signal(signal.SIGTERM, _interrupt)   # `kill` and service managers: give the running jobs back
    if args.executor == "ray":
        from hub.queue.ray_executor import run_ray

        counts = run_ray(store, queue, address=args.address, workers=args.workers, once=args.once,
                         poll_s=args.poll, heartbeat_s=args.heartbeat, log=say)
    else:
        from hub.queue.worker import run_local

        counts = run_local(store, queue, once=args.once, poll_s=args.poll, heartbeat_s=args.heartbeat, log=say)
    _emit(args, {"jobs": counts}, "worker done: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                                                     or "no jobs"))
    return 0
