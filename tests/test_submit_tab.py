"""The Submit tab through its API: signed-in submission, the queue table, a failed job's error,
resubmission and cancel; bad picks are one short error."""

from __future__ import annotations

import pytest

from tests.test_ui import VARIANT_ID, add_tiny_variant, free_port


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    from gradio_client import Client

    from hub.store import Store
    from hub.ui.app import launch
    from hub.ui.app_config import AppConfig
    from hub.ui.auth import load_auth

    store = Store(tmp_path_factory.mktemp("submit") / "home")
    add_tiny_variant(store, tiny_model_dir)
    port = free_port()
    demo = launch(store, port=port, prevent_thread_lock=True, auth=load_auth(["ann:pw"], None),
                  config=AppConfig(tabs=["leaderboard", "submit"]))
    try:
        yield store, Client(f"http://127.0.0.1:{port}/", auth=("ann", "pw"), verbose=False, download_files=False)
    finally:
        demo.close()


def table(client) -> list[list]:
    return client.predict(api_name="/jobs")["data"]


def test_submit_shows_the_queue_and_a_failed_job_can_be_resubmitted(served):
    from hub.queue.db import open_queue

    store, client = served
    said = client.predict(VARIANT_ID, ["default", "robustness"], "torch model", api_name="/submit")
    assert said.count("queued") == 2
    rows = table(client)
    assert [row[1] for row in rows] == ["PENDING", "PENDING"] and {row[5] for row in rows} == {"ann"}
    assert {row[4] for row in rows} == {"default", "robustness"} and {row[3] for row in rows} == {VARIANT_ID}
    again = client.predict(VARIANT_ID, ["default"], "torch model", api_name="/submit")
    assert "already PENDING" in again and len(table(client)) == 2   # a duplicate queues nothing

    queue = open_queue(store)
    job = queue.claim("w-test")
    queue.fail(job.id, "w-test", "ValueError: the data went away")
    failed = next(row for row in table(client) if row[0] == job.id)
    assert failed[1] == "FAILED" and failed[8] == "ValueError: the data went away"
    assert "queued again" in client.predict(job.id, api_name="/resubmit")
    assert queue.get(job.id).status == "PENDING" and queue.get(job.id).error is None
    other = next(row[0] for row in table(client) if row[0] != job.id)
    assert "cancelled" in client.predict(other, api_name="/cancel_job")
    assert queue.get(other).status == "CANCELLED"


@pytest.mark.parametrize("args, message", [
    (("no-such-variant", ["default"], "torch model"), "Unknown variant 'no-such-variant'"),
    ((VARIANT_ID, [], "torch model"), "Pick at least one suite"),
    ((VARIANT_ID, ["generation"], "torch model"), "not in the list of choices"),   # only suites that apply are offered
    ((VARIANT_ID, ["default"], "no-engine"), "no engine 'no-engine'"),
])
def test_bad_picks_are_one_short_error(served, args, message):
    _, client = served
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/submit")


def test_resubmitting_a_pending_or_unknown_job_is_refused(served):
    _, client = served
    with pytest.raises(Exception, match="Unknown job 'job-nope'"):
        client.predict("job-nope", api_name="/resubmit")
    pending = next((row[0] for row in table(client) if row[1] == "PENDING"), None)
    if pending is None:
        pending = client.predict(VARIANT_ID, ["explain"], "torch model", api_name="/submit").split("`")[1]
    with pytest.raises(Exception, match="only a failed or cancelled job"):
        client.predict(pending, api_name="/resubmit")


def test_a_hub_model_is_pulled_picked_and_submitted(served, hub_server, tiny_model_dir, tmp_path):
    """The Submit tab pulls a Hub id (evalhub pull) with a built-in dataset; paths are refused."""
    import torch
    from huggingface_hub import HfApi
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    store, client = served
    labels = ["business", "entertainment", "politics", "sports", "tech"]     # bbc-news's labels
    folder = tmp_path / "topics"
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(
        tiny_model_dir, num_labels=5, ignore_mismatched_sizes=True, id2label=dict(enumerate(labels)),
        label2id={v: i for i, v in enumerate(labels)}).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    repo = f"{hub_server.org}/topics"
    api = HfApi()
    api.create_repo(repo)
    api.upload_folder(repo_id=repo, folder_path=str(folder))

    said, picked = client.predict(repo, "bbc-news", api_name="/pull")
    variant = store.get_variant(picked["value"] if isinstance(picked, dict) else picked)   # the dropdown's update
    assert f"pulled `{repo}`" in said and variant.id in said and variant.run_config["data"]["source"] == "bbc-news"
    assert "queued" in client.predict(variant.id, ["default"], "torch model", api_name="/submit")
    for repo, data, message in [(str(folder), "bbc-news", "Give a Hub model id"),
                                ("../etc", "bbc-news", "Give a Hub model id"),
                                (repo, "/etc/passwd", "not in the list of choices"),   # gradio checks first
                                (f"{hub_server.org}/missing", "bbc-news", "missing")]:
        with pytest.raises(Exception, match=message):
            client.predict(repo, data, api_name="/pull")


def test_the_suites_offered_are_those_that_apply_to_the_variants_task(served):
    from hub.suites import available_suites
    from hub.ui.submit_tab import suite_choices

    store, _ = served
    offered = suite_choices(store, VARIANT_ID)          # a classifier
    assert {"default", "robustness", "safety", "full"} <= set(offered)
    assert not any(name.startswith("generation") for name in offered)
    assert suite_choices(store, None) == available_suites() == suite_choices(store, "no-such-variant")
