"""The Ray executor on a two-node local cluster and a PostgreSQL results database: jobs pinned to
each node run once each, results from both nodes; a node removed mid-run gives its job back
(PENDING, with the reason) until a node with its resource joins, where it finishes once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from hub.queue.db import open_queue
from hub.queue.submit import submit_eval
from tests.conftest import tiny_config

ray = pytest.importorskip("ray", reason="the Ray executor needs evalhub[ray]")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head with 1 CPU and a second node with 1 CPU and the custom resource ``openvino``; module-scoped
    (only this module uses it, and its processes' memory is given back when these tests end)."""
    from ray.cluster_utils import Cluster

    root = tmp_path_factory.mktemp("ray")
    env = {"RAY_TMPDIR": str(root / "tmp"), "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
           "HOME": str(root / "home")}   # Ray 2.60 writes ~/.ray/auth_token
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    (root / "home").mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"head": 1}})
    second = cluster.add_node(num_cpus=1, resources={"openvino": 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        yield cluster, {"head": cluster.head_node.node_id, "openvino": second.node_id}
    finally:
        ray.shutdown()
        cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def variant_store(tmp_path_factory, tiny_model_dir, tiny_csv, postgres_server):
    """A tiny variant in a store whose results database is a throwaway PostgreSQL, as a team's is."""
    from hub.run_config import parse_run_config
    from hub.store import Store
    from tasks.text_classification.train import train

    store = Store(tmp_path_factory.mktemp("queue-ray") / "home", db=postgres_server.new_database())
    cfg = parse_run_config(tiny_config(tiny_model_dir, tiny_csv, train={"max_steps": 4}))
    return store, train(cfg, store, show_progress=False)


def suites(folder: Path, names: list[str]) -> list[str]:
    for name in names:
        (folder / f"{name}.yaml").write_text(f"name: {name}\nevaluators: [classification]\n")
    return [str(folder / f"{name}.yaml") for name in names]


class Worker:
    """``run_ray`` in a thread of this process, stopped on exit."""

    def __init__(self, store, queue, **options) -> None:
        from hub.queue.ray_executor import run_ray

        self.stop, self.log = threading.Event(), []
        self.thread = threading.Thread(target=lambda: run_ray(store, queue, stop=self.stop, log=self.log.append,
                                                             poll_s=0.2, heartbeat_s=0.5, **options))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(60)


def wait_for(condition, timeout: float = 120, what: str = ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_jobs_pinned_to_each_node_finish_once_each(cluster, variant_store, tmp_path):
    _, nodes = cluster
    store, vid = variant_store
    queue = open_queue(store)
    made = [submit_eval(store, queue, vid, suite, bootstrap=20, resources={pin: 1})[0]
            for suite, pin in zip(suites(tmp_path, [f"pin-{i}" for i in range(4)]), ["head", "openvino"] * 2)]
    with Worker(store, queue, workers=2) as worker:
        wait_for(lambda: all(queue.get(job.id).status == "FINISHED" for job in made), what="4 FINISHED jobs")
    done = [queue.get(job.id) for job in made]
    ran_on = {job.id: job.worker.rsplit("on node ", 1)[-1] for job in done}
    assert [ran_on[job.id] for job in made] == [nodes["head"], nodes["openvino"]] * 2, worker.log
    runs = [run["id"] for run in store.runs()]
    assert sorted(job.result_id for job in done) == sorted(job.run_id for job in made)
    assert all(runs.count(job.run_id) == 1 for job in made) and all(job.attempts == 1 for job in done)


def test_a_job_cancelled_while_it_runs_has_its_ray_task_stopped(cluster, variant_store, tmp_path):
    store, vid = variant_store
    queue = open_queue(store)
    # a job that runs for tens of seconds (integrated gradients with thousands of steps on every
    # example), so the cancel always lands while it runs: a bootstrap-heavy suite ended in under a
    # second on a quiet machine, before the driver's next heartbeat could see the cancel
    suite = tmp_path / "cancelled.yaml"
    suite.write_text("name: cancelled\nevaluators:\n  - explain: {methods: [ig], n_steps: 20000, max_examples: 0, "
                     "randomization: false}\n")
    job, _ = submit_eval(store, queue, vid, str(suite), bootstrap=0, resources={"head": 1})
    with Worker(store, queue, workers=2) as worker:
        wait_for(lambda: queue.get(job.id).status == "RUNNING", what="the job to run")
        queue.cancel(job.id)
        wait_for(lambda: any(f"job {job.id}: cancelled; stopping its Ray task" in line for line in worker.log),
                 what="the driver to stop the task")
    assert queue.get(job.id).status == "CANCELLED" and job.run_id not in [run["id"] for run in store.runs()]


def test_a_node_removed_mid_run_gives_its_job_back_and_it_finishes_once_on_a_new_node(cluster, variant_store,
                                                                                       tmp_path):
    cluster, _ = cluster
    store, vid = variant_store
    queue = open_queue(store)
    doomed = cluster.add_node(num_cpus=1, resources={"doomed": 1})
    cluster.wait_for_nodes()
    (suite,) = suites(tmp_path, ["doomed"])
    job, _ = submit_eval(store, queue, vid, suite, bootstrap=5000, resources={"doomed": 1})
    with Worker(store, queue, workers=3) as worker:
        wait_for(lambda: queue.get(job.id).status == "RUNNING", what="the job to run")
        cluster.remove_node(doomed)
        back = wait_for(lambda: (lambda j: j if j.status == "PENDING" else None)(queue.get(job.id)),
                        what="the job back to PENDING")
        assert "doomed" in back.error and "left while the job ran" in back.error, back.error
        assert job.run_id not in [run["id"] for run in store.runs()]
        replacement = cluster.add_node(num_cpus=1, resources={"doomed": 1})
        try:
            wait_for(lambda: queue.get(job.id).status == "FINISHED", what="the job to finish on the new node")
        finally:
            cluster.remove_node(replacement)
    done = queue.get(job.id)
    assert done.worker.endswith(replacement.node_id), worker.log
    assert [run["id"] for run in store.runs()].count(job.run_id) == 1
