#!/usr/bin/env python
"""Benchmark the served app: concurrent ``gradio_client`` clients on ``/predict``, torch vs engine.

The app is started as a user would (``evalhub --home STORE serve --port P``, the ``evalhub``
next to this Python); the cold start is the spawn to the first ``/predict`` answer (target
<= 15 s). Then ``--clients`` threads (16), one ``gradio_client.Client`` each, loop over the
variant's stored test-split texts for ``--seconds`` (60), on engine ``torch`` (its torch
model), then on its best engine (``Store.best_engine``, what the demo serves). Per engine:
errors (target 0: exceptions, answers without confidences; the first kept), p50/p95
latency, requests/s, CPU ms per request of the clients (this process) and the server; then

- engine/torch requests/s (target >= 2x); ceiling: the same ratio offline;
- served requests/s over offline throughput: ``predict_proba`` on batches of 16, the
  predictor loaded by the app's own ``PredictorCache`` in this process after the server
  stopped (target >= 50%: the app's overhead); ceiling: what is left once the clients' own
  CPU is paid, as they share the machine;
- the server's ``VmRSS`` (``/proc/<pid>/status``) at the first answer, at the start of the
  load (both predictors warm) and at the end; growth end/start (target < 10%: leaks).

A target whose ceiling misses it is reported beyond this machine. Only the API is used
((variant_id, text, engine) -> label confidences), not how the app batches requests.
Nothing to install beyond evalhub; the store is the demo's::

    bash scripts/demo.sh --no-serve          # once: ./.evalhub with a variant and its engine
    .venv/bin/python scripts/bench_serve.py --home .evalhub --json bench_serve.json
    .venv/bin/python scripts/bench_serve.py --seconds 20 --clients 8    # a shorter run
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HOW_TO_MAKE_ONE = ("bench_serve: no store with a variant that has an engine: run "
                   "`bash scripts/demo.sh --no-serve` first (it makes ./.evalhub), then give --home")
TARGETS = {"errors": 0, "engine_over_torch": 2.0, "served_share_of_offline": 0.5,
           "rss_growth": 0.10, "cold_start_s": 15.0}
OFFLINE_BATCH, START_TIMEOUT_S = 16, 180.0     # texts per offline call; the longest cold start waited for


class NoStore(Exception):   # the store, or the variant, the benchmark needs is not there
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--home", help="the store (default: $EVALHUB_HOME or ./.evalhub, as evalhub)")
    p.add_argument("--variant", help="variant id or name (default: the leaderboard's best with an engine)")
    p.add_argument("--seconds", type=float, default=60.0, help="load time per engine (default 60)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    p.add_argument("--offline-seconds", type=float, default=10.0,
                   help="time per predictor for the offline throughput (default 10)")
    p.add_argument("--max-texts", type=int, default=256, help="stored texts to cycle over (default 256)")
    p.add_argument("--app-config", help="passed to `evalhub serve --app-config`")
    p.add_argument("--json", type=Path, help="write all figures to this file")
    args = p.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0 or args.offline_seconds <= 0:
        p.error("--clients must be >= 1, --seconds and --offline-seconds > 0")
    return args


def pick(store: Any, ref: str | None) -> tuple[Any, Any]:
    """(variant record, its best engine): ``ref``'s, else the first leaderboard variant with one."""
    from hub.errors import UserError

    if ref:
        try:
            record = store.get_variant(ref)
        except UserError as exc:
            raise NoStore(f"bench_serve: {exc}") from None
        engine = store.best_engine(record.id)
        if engine is None:
            raise NoStore(f"bench_serve: variant {record.id} has no engine that passed parity; build one with "
                          f"`evalhub build-engine {record.id} --backend auto`")
        return record, engine
    ranked = [row["variant"] for row in store.leaderboard()] + [v.id for v in reversed(store.list_variants())]
    for vid in dict.fromkeys(ranked):
        engine = store.best_engine(vid)
        if engine is not None:
            return store.get_variant(vid), engine
    raise NoStore(HOW_TO_MAKE_ONE)


def bench_texts(store: Any, variant_id: str, limit: int, max_chars: int) -> tuple[list[str], str]:
    """The newest stored test-split texts of the variant (the demo's examples when there are none)."""
    for run in (r for r in reversed(store.runs(variant_id)) if r.get("split") == "test"):
        rows = store.predictions(run["id"], limit=limit)
        texts = [r["text"][:max_chars] for r in rows if (r.get("text") or "").strip()]
        if texts:
            return texts, f"run {run['id']} (test split)"
    from hub.ui.demo_tab import EXAMPLES

    return list(EXAMPLES), "the demo's examples (no stored test-split texts)"


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def start_server(home: Path, port: int, app_config: str | None, log_path: Path) -> subprocess.Popen:
    evalhub = Path(sys.executable).with_name("evalhub")     # .venv/bin/evalhub, as a user runs it
    cmd = [str(evalhub), "--home", str(home), "serve", "--port", str(port)]
    cmd += ["--app-config", app_config] if app_config else []
    with log_path.open("wb") as log:    # the child keeps its own copy of the file
        spawned = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    proc.spawned_at = spawned            # the cold start counts from here
    return proc


def stop_server(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """Terminate, wait, kill when it does not stop in time; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    return proc.returncode


def cpu_s(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc/<pid>/stat, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime, stime


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of a process, from /proc/<pid>/status, in MiB."""
    return int(re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)[1]) / 1024


def connect(url: str) -> Any:
    """A client of the local app. ``ssl_verify=False``: the app speaks plain HTTP, and with
    verification on httpx reads the CA bundle for every request (~55 ms of CPU), which
    would make the clients, not the app, the bottleneck."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, ssl_verify=False)


def confidences(answer: Any) -> dict[str, float]:
    """The label -> probability of a /predict answer; ValueError when it has none (a refusal)."""
    rows = answer.get("confidences") if isinstance(answer, dict) else None
    if not rows:
        raise ValueError(f"answer without confidences: {str(answer)[:200]}")
    return {row["label"]: row["confidence"] for row in rows}


def first_answer(proc: subprocess.Popen, url: str, request: tuple, timeout: float, log_path: Path) -> float:
    """Seconds until the server, spawned at ``proc``'s start, gives a first /predict answer."""
    spawned, last = proc.spawned_at, None
    while time.perf_counter() - spawned < timeout and proc.poll() is None:
        try:
            client = connect(url)
        except Exception as exc:   # not listening yet
            last = exc
            time.sleep(0.1)
            continue
        confidences(client.predict(*request, api_name="/predict"))
        client.close()                  # its heartbeat thread would outlive the server
        return time.perf_counter() - spawned
    why = f"no answer within {timeout:.0f} s ({last!r})" if proc.poll() is None else f"exit {proc.returncode}"
    raise RuntimeError(f"the server: {why}; its log ends:\n{log_path.read_text(errors='replace')[-3000:]}")


def load(url: str, variant_id: str, engine: str, texts: list[str], args: argparse.Namespace, pid: int) -> dict:
    """``--clients`` threads, one Client each, on /predict for ``--seconds``: latencies, errors and
    whose CPU it took: the clients' (this process) or the server's (``pid``)."""
    clients = args.clients
    sessions = [connect(url) for _ in range(clients)]    # connecting is outside the timed window
    latencies: list[float] = []                         # list.append is atomic: no lock needed
    errors: list[str] = []

    def work(i: int) -> None:
        n = i * len(texts) // clients                     # each client starts elsewhere in the texts
        while time.perf_counter() < deadline:
            text, n, start = texts[n % len(texts)], n + 1, time.perf_counter()
            try:
                confidences(sessions[i].predict(variant_id, text, engine, api_name="/predict"))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}")
                continue
            latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    cpu, start = (time.process_time(), cpu_s(pid)), time.perf_counter()
    deadline = start + args.seconds
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - start, (time.process_time() - cpu[0], cpu_s(pid) - cpu[1])
    for session in sessions:
        session.close()
    return summarise_load(latencies, errors, elapsed, *cpu)


def summarise_load(latencies: list[float], errors: list[str], elapsed: float, client_cpu_s: float = 0.0,
                   server_cpu_s: float = 0.0) -> dict:
    """Requests/s of the answered requests, their p50/p95 latency (ms), the errors and the first one,
    and the CPU ms the clients and the server spent per answered request (percentiles: numpy's linear)."""
    ms, n = [x * 1000 for x in latencies], max(len(latencies), 1)
    return {"requests": len(ms), "errors": len(errors), "first_error": errors[0] if errors else None,
            "elapsed_s": elapsed, "requests_per_s": len(ms) / elapsed if elapsed > 0 else 0.0,
            **{f"p{q}_ms": float(np.percentile(ms, q)) if ms else None for q in (50, 95)}, "client_cpu_s": client_cpu_s,
            "server_cpu_s": server_cpu_s, "client_cpu_ms_per_request": 1000 * client_cpu_s / n,
            "server_cpu_ms_per_request": 1000 * server_cpu_s / n}


def offline_throughput(store: Any, variant_id: str, engines: dict[str, str], texts: list[str],
                       seconds: float) -> dict:
    """Texts/s of ``predict_proba`` on batches of 16 per kind -> engine, loaded by the app's own
    cache. Calls alternate between the predictors, so a drift in the machine's load hits them
    alike, and the median call counts, so one stalled by another job does not."""
    from transformers.utils import logging as hf_logging

    from hub.ui.predictor_cache import PredictorCache

    hf_logging.disable_progress_bar()       # no "Loading weights" bar in the report
    cache = PredictorCache(store, max_size=len(engines))
    predictors = {kind: cache.get(variant_id, name)[1] for kind, name in engines.items()}
    batches = [[texts[(i + k) % len(texts)] for k in range(OFFLINE_BATCH)]
               for i in range(0, max(len(texts), OFFLINE_BATCH), OFFLINE_BATCH)]
    times: dict[str, list[float]] = {kind: [] for kind in predictors}
    for predictor in predictors.values():
        predictor.predict_proba(batches[0])     # warm-up: first-call allocations, lazy compilation
    while any(sum(t) < seconds or len(t) < 3 for t in times.values()):
        for kind, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict_proba(batches[len(times[kind]) % len(batches)])
            times[kind].append(time.perf_counter() - start)
    return {kind: {"batch": OFFLINE_BATCH, "calls": len(t), "texts_per_s": OFFLINE_BATCH / statistics.median(t),
                   "mean_texts_per_s": len(t) * OFFLINE_BATCH / sum(t), "median_batch_ms": statistics.median(t) * 1000}
            for kind, t in times.items()}


def serve_and_load(args: argparse.Namespace, store: Any, record: Any, engine: Any, texts: list[str],
                   work: Path) -> dict:
    """Start the app, time its cold start, load it with torch then the engine, stop it."""
    port = free_port()
    url, log_path = f"http://127.0.0.1:{port}/", work / "server.log"
    proc = start_server(store.root, port, args.app_config, log_path)
    out: dict[str, Any] = {"port": port, "server_pid": proc.pid}
    try:
        out["cold_start_s"] = first_answer(proc, url, (record.id, texts[0], engine.id), START_TIMEOUT_S, log_path)
        memory = {"first_answer_mb": rss_mb(proc.pid)}
        warm = connect(url)
        for name in ("torch", engine.id):          # both predictors loaded before the load starts
            for text in texts[:3]:
                confidences(warm.predict(record.id, text, name, api_name="/predict"))
        warm.close()
        memory["start_mb"] = rss_mb(proc.pid)
        out["served"] = {}
        for kind, name in (("torch", "torch"), ("engine", engine.id)):
            print(f"  {args.clients} clients x {args.seconds:g} s on {name} ...", flush=True)
            out["served"][kind] = load(url, record.id, name, texts, args, proc.pid)
        memory["end_mb"] = rss_mb(proc.pid)
        memory["growth"] = memory["end_mb"] / memory["start_mb"] - 1
        out["memory"] = memory
    finally:
        out["server_exit"] = stop_server(proc)
    return out


def ratios_and_targets(report: dict) -> tuple[dict, dict]:
    """The ratios, and per target its value, whether it is met and (where known) this machine's ceiling."""
    served, offline = report["served"], report["offline"]
    ratio = lambda a, b: a / b if b else None   # noqa: E731
    ratios = {"engine_over_torch": ratio(served["engine"]["requests_per_s"], served["torch"]["requests_per_s"]),
              "offline_engine_over_torch": ratio(offline["engine"]["texts_per_s"], offline["torch"]["texts_per_s"]),
              "served_share_of_offline": {k: ratio(served[k]["requests_per_s"], offline[k]["texts_per_s"])
                                          for k in ("torch", "engine")}}
    errors = served["torch"]["errors"] + served["engine"]["errors"]
    share = min(v for v in ratios["served_share_of_offline"].values() if v is not None)
    # the clients share this machine's CPUs with the app: with no app overhead at all, the
    # share would be 1 / (1 + client CPU per request / the model's CPU per text offline)
    model_ms = {k: 1000 * report["machine"]["cpus_usable"] / offline[k]["texts_per_s"] for k in offline}
    ratios["clients_bound_share_of_offline"] = min(1 / (1 + served[k]["client_cpu_ms_per_request"] / model_ms[k])
                                                   for k in ("torch", "engine"))
    return ratios, {
        "errors": target(errors, "==", TARGETS["errors"]),
        "engine_over_torch": target(ratios["engine_over_torch"], ">=", TARGETS["engine_over_torch"],
                                    ceiling=ratios["offline_engine_over_torch"],
                                    why=f"the engine's offline speed-up over torch at batch {OFFLINE_BATCH}"),
        "served_share_of_offline": target(share, ">=", TARGETS["served_share_of_offline"],
                                          ceiling=ratios["clients_bound_share_of_offline"],
                                          why="the share left once the clients' own CPU is paid on this machine"),
        "rss_growth": target(report["memory"]["growth"], "<", TARGETS["rss_growth"]),
        "cold_start_s": target(report["cold_start_s"], "<=", TARGETS["cold_start_s"]),
    }


def target(value: Any, op: str, wanted: float, ceiling: float | None = None, why: str = "") -> dict:
    """A figure against its target; with the ceiling this machine allows, whether the target is beyond it."""
    meets = {"==": operator.eq, ">=": operator.ge, "<": operator.lt, "<=": operator.le}[op]
    out = {"value": value, "target": f"{op} {wanted}", "met": value is not None and meets(value, wanted)}
    if ceiling is not None:
        out.update(ceiling=ceiling, ceiling_is=why, beyond_this_machine=not meets(ceiling, wanted))
    return out


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(report: dict) -> None:
    s, o, r = report["served"], report["offline"], report["ratios"]
    print(f"\nserved: {report['settings']['clients']} clients x {report['settings']['seconds']:g} s on /predict, "
          f"variant {report['settings']['variant']}")
    print(f"  {'model':8s} {'requests/s':>10s} {'p50 ms':>8s} {'p95 ms':>8s} {'errors':>6s} "
          f"{'offline b16 /s':>14s} {'share':>6s} {'CPU ms/request: clients, server':>32s}")
    for kind in ("torch", "engine"):
        share = r["served_share_of_offline"][kind]
        print(f"  {kind:8s} {s[kind]['requests_per_s']:10.2f} {fmt(s[kind]['p50_ms']):>8s} "
              f"{fmt(s[kind]['p95_ms']):>8s} {s[kind]['errors']:6d} {o[kind]['texts_per_s']:14.2f} "
              f"{fmt(share and 100 * share, '.0f'):>5s}% {s[kind]['client_cpu_ms_per_request']:23.1f}, "
              f"{s[kind]['server_cpu_ms_per_request']:6.1f}" + (f"\n    first error: {s[kind]['first_error']}"
                                                               if s[kind]["first_error"] else ""))
    m = report["memory"]
    print(f"  server RSS: {m['first_answer_mb']:.0f} MB at the first answer, {m['start_mb']:.0f} MB at the start "
          f"of the load, {m['end_mb']:.0f} MB at the end ({100 * m['growth']:+.1f}%)")
    print("\ntargets:")
    for name, t in report["targets"].items():
        line = f"  {name:24s} {fmt(t['value'], '.3f') if isinstance(t['value'], float) else t['value']:>8} " \
               f"(target {t['target']}): {'met' if t['met'] else 'MISSED'}"
        if "ceiling" in t:
            beyond = "beyond this machine, " if t["beyond_this_machine"] else ""
            line += f"; {beyond}ceiling {t['ceiling']:.3f} ({t['ceiling_is']})"
        print(line)


def machine_info() -> dict:
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)),
            "python": platform.python_version(), "platform": platform.platform(), "gradio": version("gradio"),
            "gradio_client": version("gradio_client"), "loadavg_at_start": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from hub.store import Store

    store = Store(args.home)
    try:
        record, engine = pick(store, args.variant)
    except NoStore as exc:
        print(exc, file=sys.stderr)
        return 2
    from hub.ui.demo_tab import MAX_TEXT_CHARS   # gradio: imported once there is something to serve

    texts, source = bench_texts(store, record.id, args.max_texts, MAX_TEXT_CHARS)
    report: dict[str, Any] = {"machine": machine_info(), "settings": {
        "home": str(store.root), "variant": record.id, "engine": engine.id, "texts": len(texts), "texts_source": source,
        **{k: getattr(args, k) for k in ("clients", "seconds", "offline_seconds", "app_config")}}}
    print(f"bench_serve: variant {record.id}, engine {engine.id}, {len(texts)} texts from {source}; "
          f"{report['machine']['cpus_usable']} CPUs, load {report['machine']['loadavg_at_start'][0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        report.update(serve_and_load(args, store, record, engine, texts, Path(tmp)))
    print(f"  offline predict_proba, batches of {OFFLINE_BATCH}, {args.offline_seconds:g} s each ...", flush=True)
    report["offline"] = offline_throughput(store, record.id, {"torch": "torch", "engine": engine.id}, texts,
                                           args.offline_seconds)
    report["machine"]["loadavg_at_end"] = os.getloadavg()
    report["ratios"], report["targets"] = ratios_and_targets(report)
    print_report(report)
    print("\nTimings drift when other jobs share the CPUs (the clients run on this machine too); "
          "read the ratios, and measure on a quiet machine.")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
