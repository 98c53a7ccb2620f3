"""The local worker on a tiny variant: CLI submit/jobs/cancel/worker, bad input, a cancelled
run, and a worker killed with SIGKILL mid-job (the job is retried, no half-written run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.cli import main
from hub.queue.db import open_queue
from tests.conftest import tiny_config

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def variant_store(tmp_path_factory, tiny_model_dir, tiny_csv):
    from hub.run_config import parse_run_config
    from hub.store import Store
    from tasks.text_classification.train import train

    store = Store(tmp_path_factory.mktemp("queue") / "home")
    cfg = parse_run_config(tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 4}))
    return store, train(cfg, store, show_progress=False)


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:   # argparse's own refusals
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def suite_file(folder: Path, name: str) -> str:
    """A one-evaluator suite of its own name: a job of it is other work than the default suite's."""
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nevaluators: [classification]\n")
    return str(path)


def run_ids(store) -> list[str]:
    return [run["id"] for run in store.runs()]


@pytest.mark.parametrize("args, message", [
    (["submit", "eval", "no-such-variant"], r"no variant 'no-such-variant'"),
    (["submit", "eval", "{vid}", "--suite", "nope"], r"suite 'nope'|unknown suite|no suite"),
    (["submit", "eval", "{vid}", "--suite", "generation"], r"do not apply to task text-classification"),
    (["submit", "eval", "{vid}", "--engine", "nope"], r"no engine 'nope'"),
    (["submit", "eval", "{vid}", "--split", "nope"], r"has no split 'nope'"),
    (["submit", "build-engine", "{vid}", "--backend", "nope"], r"invalid choice: 'nope'"),
    (["submit", "eval", "{vid}", "--resource", "gpu=lots"], r"expected NAME or NAME=NUMBER"),
    (["cancel", "job-nope"], r"no job 'job-nope'"),
    (["jobs", "--status", "DONE"], r"invalid choice"),
    (["worker", "--poll", "0"], r"--poll and --heartbeat take a number of seconds above 0"),
    (["worker", "--heartbeat", "45"], r"--heartbeat 45: a job silent for 60 s is taken back"),
    (["worker", "--executor", "ray", "--address", "127.0.0.1:1", "--once"],
     r"cannot reach the Ray cluster at 127.0.0.1:1|the ray executor needs Ray"),
])
def test_bad_input_is_one_line_and_exit_2(variant_store, capsys, args, message):
    import re

    store, vid = variant_store
    code, out, err = cli(capsys, "--home", str(store.root), *[a.format(vid=vid) for a in args])
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and re.search(message, lines[0]), err
    assert "Traceback" not in err and out == ""


def test_submit_worker_jobs_and_a_duplicate(variant_store, capsys):
    store, vid = variant_store
    home = ["--home", str(store.root)]
    code, out, _ = cli(capsys, *home, "--json", "submit", "eval", vid, "--bootstrap", "20")
    (made,) = json.loads(out)["jobs"]
    assert code == 0 and made["submission"] == "created" and made["status"] == "PENDING"
    code, out, _ = cli(capsys, *home, "submit", "eval", vid, "--bootstrap", "20")
    assert out.strip() == f"job {made['job']} pending (exists)"
    code, out, _ = cli(capsys, *home, "--json", "worker", "--once", "--heartbeat", "0.2")
    assert code == 0 and json.loads(out) == {"jobs": {"FINISHED": 1}}
    code, out, _ = cli(capsys, *home, "--json", "jobs", "--status", "finished")
    (job,) = json.loads(out)
    assert job["id"] == made["job"] and job["result_id"] == "run-" + made["job"][4:] and job["attempts"] == 1
    assert job["result_id"] in run_ids(store)
    code, out, _ = cli(capsys, *home, "jobs")
    assert made["job"] in out and "FINISHED" in out
    code, out, _ = cli(capsys, *home, "submit", "eval", vid, "--bootstrap", "20")
    assert out.strip() == f"job {made['job']} finished (exists)"   # the same work is not queued again


def test_a_cancelled_running_job_stops_and_stores_nothing(variant_store, tmp_path):
    from hub.queue.execute import JobStopped, execute_job
    from hub.queue.submit import submit_eval
    from hub.queue.worker import Heartbeat, outcome

    store, vid = variant_store
    queue = open_queue(store)
    job, _ = submit_eval(store, queue, vid, suite_file(tmp_path, "cancelled"), bootstrap=21)
    job = queue.claim("w-test")
    queue.cancel(job.id)
    with Heartbeat(queue, "w-test", {job.id}, 0.01) as beat:
        time.sleep(0.05)
        status, detail = outcome(queue, job, "w-test",
                                 lambda: execute_job(store, job, should_stop=lambda: job.id in beat.lost))
    assert status == "STOPPED" and "cancelled or taken back" in detail
    assert queue.get(job.id).status == "CANCELLED" and job.run_id not in run_ids(store)
    with pytest.raises(JobStopped):
        execute_job(store, job, should_stop=lambda: True)


def running_worker(store, queue, job_id: str) -> subprocess.Popen:
    """`evalhub worker` in a subprocess, returned once it runs ``job_id``."""
    env = {**os.environ, "EVALHUB_HOME": str(store.root), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--heartbeat", "0.2"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while queue.get(job_id).status == "PENDING" and time.time() < deadline and worker.poll() is None:
        time.sleep(0.05)
    if queue.get(job_id).status != "RUNNING":
        worker.kill()
        pytest.fail(f"the worker did not start the job: {worker.communicate()[1]}")
    return worker


def test_a_stopped_or_killed_worker_leaves_no_half_run_and_its_job_is_retried(variant_store, tmp_path):
    from hub.queue.submit import submit_eval
    from hub.queue.worker import run_local

    store, vid = variant_store
    queue = open_queue(store, stale_s=1.0)
    job, _ = submit_eval(store, queue, vid, suite_file(tmp_path, "killed"), bootstrap=22, max_attempts=2)

    stopped = running_worker(store, queue, job.id)   # SIGTERM: the job is given back at once, uncounted
    stopped.terminate()
    assert stopped.wait(60) != 0
    back = queue.get(job.id)
    assert (back.status, back.attempts) == ("PENDING", 0) and "was interrupted" in back.error

    killed = running_worker(store, queue, job.id)    # SIGKILL: nothing runs any more, not even a handler
    killed.kill()
    killed.wait()
    held = queue.get(job.id)
    assert held.status == "RUNNING" and held.attempts == 1 and job.run_id not in run_ids(store)
    time.sleep(1.2)   # past the stale limit: the next worker takes it back and runs it
    logged: list[str] = []
    assert run_local(store, queue, once=True, heartbeat_s=0.2, log=logged.append) == {"FINISHED": 1}
    done = queue.get(job.id)
    assert done.status == "FINISHED" and done.attempts == 2 and done.result_id == job.run_id
    assert run_ids(store).count(job.run_id) == 1
    assert any("stopped sending heartbeats" in line for line in logged)


def test_an_engine_build_job_calls_build_engine_and_asks_ray_for_its_site(variant_store, capsys, monkeypatch):
    """The job's wiring (build_engine itself is tested in test_engines): an OpenVINO build asks for the
    `openvino` resource, and the worker passes the job's backend, precision and options through."""
    import hub.engines.build

    store, vid = variant_store
    calls = []
    monkeypatch.setattr(hub.engines.build, "build_engine", lambda store, variant, backend, precision, options, log:
                        calls.append((variant, backend, precision, options)) or "openvino-int8-test")
    home = ["--home", str(store.root)]
    code, out, _ = cli(capsys, *home, "--json", "submit", "build-engine", vid, "--backend", "openvino",
                       "--precision", "int8", "--option", "mode=throughput")
    (made,) = json.loads(out)["jobs"]
    job = open_queue(store).get(made["job"])
    assert code == 0 and job.engine == "openvino-int8"
    assert (job.args["resources"], job.args["num_gpus"]) == ({"openvino": 1}, 0)
    assert cli(capsys, *home, "--json", "worker", "--once")[:2] == (0, '{"jobs": {"FINISHED": 1}}\n')
    assert calls == [(vid, "openvino", "int8", {"mode": "throughput"})]
    assert open_queue(store).get(made["job"]).result_id == "openvino-int8-test"
