"""The Submit tab: queue evaluations of a variant for the team's workers, and watch the queue.

Submissions go through the same checks as ``evalhub submit`` (:mod:`hub.queue.submit`), against
the store as the app shows it (a variant the app config hides cannot be submitted). With
``--auth`` the whole app is behind gradio's sign-in, so every submission has a user name; it is
recorded as the job's ``submitted_by``. The queue table is one of the tab's reloads, so it follows
the store like every other tab (the app re-reads the store when its results change, so the
leaderboard shows a job's rows as soon as its run lands), and it also re-reads the queue every
``QUEUE_TICK_S`` seconds: a job that is claimed, fails or is cancelled changes no result.

API endpoints: ``/submit`` (variant, suites, engine) -> a Markdown line per job; ``/jobs`` () ->
the queue table; ``/resubmit`` (job) and ``/cancel_job`` (job) -> a Markdown line; ``/pull`` (Hub
model id, built-in dataset) -> a Markdown line, the new variant picked (``evalhub pull`` of a Hub id:
no local folders or files from a web form).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from hub.errors import UserError, clean, quote
from hub.queue.states import CANCELLED, FAILED
from hub.ui.card_tab import variant_choices

HEADER = """\
## Submit
Queue evaluations for the team's workers (`evalhub worker`); rows reach the leaderboard as jobs finish.
"""
COLUMNS = ["job", "status", "kind", "variant", "suite / engine", "submitted by", "attempts", "result", "error"]
TORCH = "torch model"
QUEUE_TICK_S = 5.0


def _queue(store: Any, create: bool = False) -> Any:
    from hub.queue.db import open_queue

    return open_queue(getattr(store, "_store", store), create=create)   # a StoreView's queue is its store's


def _user(request: gr.Request | None) -> str:
    return (getattr(request, "username", None) or "") if request is not None else ""


def job_rows(store: Any) -> list[list[Any]]:
    """The queue, newest first, as table rows; only jobs of variants the app shows."""
    queue = _queue(store)
    shown = {v.id for v in store.list_variants()}
    rows = []
    for job in (queue.list(limit=200) if queue else []):
        if job.variant_id in shown:
            rows.append([job.id, job.status, job.kind, job.variant_id, job.suite if job.kind == "eval" else job.engine,
                         job.submitted_by, f"{job.attempts}/{job.max_attempts}", job.result_id or "",
                         job.error or ""])
    return rows


def engine_choices(store: Any, variant: str | None) -> list[str]:
    if not variant:
        return [TORCH]
    return [TORCH] + [e.id for e in reversed(store.list_engines(variant))]


def suite_choices(store: Any, variant: str | None) -> list[str]:
    """The suites whose every evaluator applies to the variant's task (all of them without a variant)."""
    from hub.registries import TASKS
    from hub.suites import available_suites, load_suite

    names = available_suites()
    try:
        record = store.get_variant(str(variant)) if variant else None
    except UserError:
        record = None
    if record is None:
        return names
    applies = TASKS.get(record.task).evaluators
    return [name for name in names if all(step in applies for step, _ in load_suite(name).steps())]


def submit(store: Any, variant: str | None, suites: list[str] | None, engine: str | None,
           request: gr.Request | None = None) -> str:
    """Queue one eval job per suite; a Markdown line per job. gr.Error for a bad pick."""
    from hub.queue.submit import submit_eval

    if not variant:
        raise gr.Error("Pick a variant.")
    if not suites:
        raise gr.Error("Pick at least one suite.")
    lines = []
    try:
        queue = _queue(store, create=True)
        for suite in suites:
            job, how = submit_eval(store, queue, str(variant), str(suite),
                                   engine=None if engine in (None, "", TORCH) else str(engine),
                                   submitted_by=_user(request))
            note = {"created": "queued", "exists": f"already {job.status}", "resubmitted": "queued again"}[how]
            lines.append(f"- `{job.id}` {clean(suite, 60)}: {note}")
    except UserError as exc:
        raise gr.Error(_app_message(exc, variant)) from None
    return "\n".join(lines)


def _app_message(exc: UserError, variant: Any) -> str:
    """A store error as the app says it: the store's messages name its path and other ids."""
    text = str(exc)
    if text.startswith("no variant") or "ambiguous" in text:
        return f"Unknown variant {quote(variant)} (pick one from the list)."
    return clean(text, 300)


def pull(store: Any, repo_id: str | None, data: str | None) -> tuple[str, Any]:
    """Bring a Hub model in as a variant (``evalhub pull REPO --data DATA``) and pick it.

    Only a Hub id and a built-in dataset: a web form must not name files on the server."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from hub.embedded_data import embedded_datasets
    from hub.pull import pull_model

    repo = (repo_id or "").strip()
    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise gr.Error(f"Give a Hub model id such as org/model, not {quote(clean(repo, 80))}.") from None
    if data not in embedded_datasets():
        raise gr.Error(f"Pick a dataset to score it on ({', '.join(embedded_datasets())}).")
    try:
        variant_id = pull_model(getattr(store, "_store", store), repo, data=data)
    except UserError as exc:
        raise gr.Error(clean(str(exc), 300)) from None
    return f"pulled `{repo}` as variant `{variant_id}`", gr.Dropdown(choices=variant_choices(store), value=variant_id)


def resubmit(store: Any, job_id: str | None, request: gr.Request | None = None) -> str:
    job = _job(store, job_id)
    if job.status not in (FAILED, CANCELLED):
        raise gr.Error(f"Job {job.id} is {job.status}; only a failed or cancelled job can be resubmitted.")
    again = _queue(store).resubmit(job.id, submitted_by=_user(request))
    return f"`{again.id}` queued again"


def cancel(store: Any, job_id: str | None) -> str:
    job = _job(store, job_id)
    try:
        cancelled, before = _queue(store).cancel(job.id)
    except UserError:
        raise gr.Error(f"Job {job.id} already ended ({job.status}).") from None
    note = " (its worker stops it at its next heartbeat)" if before == "RUNNING" else ""
    return f"`{cancelled.id}` cancelled{note}"


def _job(store: Any, job_id: str | None) -> Any:
    """A job of a shown variant by its whole id; gr.Error naming only the value given otherwise."""
    queue = _queue(store)
    if not job_id:
        raise gr.Error("Pick a job from the list.")
    try:
        job = queue.get(str(job_id)) if queue else None
    except UserError:
        job = None
    if job is None or job.id != job_id or job.variant_id not in {v.id for v in store.list_variants()}:
        raise gr.Error(f"Unknown job {quote(job_id)} (pick one from the list).")
    return job


def build_submit_tab(ctx: Any) -> dict[str, Any]:
    """Lay the tab out and wire ``/submit``, ``/jobs``, ``/resubmit`` and ``/cancel_job``."""
    from hub.embedded_data import embedded_datasets

    store = ctx.store
    choices = variant_choices(store)
    first = choices[0][1] if choices else None
    gr.Markdown(HEADER)
    with gr.Row():
        variant = gr.Dropdown(choices=choices, value=first, label="Variant", allow_custom_value=True, scale=3)
        engine = gr.Dropdown(choices=engine_choices(store, first), value=TORCH, label="Engine", allow_custom_value=True,
                             scale=2)
    with gr.Accordion("Pull a model from the Hub", open=not choices):
        with gr.Row():
            repo = gr.Textbox(label="Hub model id", placeholder="org/model", scale=3)
            data = gr.Dropdown(choices=list(embedded_datasets()), value=next(iter(embedded_datasets()), None),
                               label="Score it on", scale=2)
            fetch = gr.Button("Pull", scale=1)
    shown = suite_choices(store, first)
    suites = gr.CheckboxGroup(choices=shown, value=shown[:1] if "default" not in shown else ["default"],
                              label="Suites (those that apply to the variant's task)")
    go = gr.Button("Submit", variant="primary")
    said = gr.Markdown()
    table = gr.Dataframe(headers=COLUMNS, value=job_rows(store), label="Queue (newest first)", interactive=False,
                         wrap=True)
    with gr.Row():
        job = gr.Dropdown(choices=[], label="Job", allow_custom_value=True, scale=3)
        again = gr.Button("Resubmit", scale=1)
        stop = gr.Button("Cancel", variant="stop", scale=1)
    refresh = gr.Button("Refresh queue", size="sm")
    # the app re-reads the store when its results change; a job's own changes (claimed, failed, cancelled)
    # change no result, so the table also follows the queue on its own timer
    timer = gr.Timer(QUEUE_TICK_S)

    def reload() -> tuple:
        rows = job_rows(store)
        return rows, gr.Dropdown(choices=[row[0] for row in rows])

    def on_variant(v: str | None) -> tuple:
        names = suite_choices(store, v)
        return (gr.Dropdown(choices=engine_choices(store, v), value=TORCH),
                gr.CheckboxGroup(choices=names, value=names[:1] if "default" not in names else ["default"]))

    variant.change(on_variant, inputs=variant, outputs=[engine, suites], api_visibility="private")
    def on_submit(v: str | None, s: list[str] | None, e: str | None, request: gr.Request) -> str:
        return submit(store, v, s, e, request)   # gradio passes the request (the signed-in user) by annotation

    def on_resubmit(j: str | None, request: gr.Request) -> str:
        return resubmit(store, j, request)

    go.click(on_submit, inputs=[variant, suites, engine], outputs=said, api_name="submit").then(
        reload, outputs=[table, job], api_visibility="private")
    fetch.click(lambda r, d: pull(store, r, d), inputs=[repo, data], outputs=[said, variant], api_name="pull")
    refresh.click(lambda: job_rows(store), outputs=table, api_name="jobs")
    timer.tick(reload, outputs=[table, job], api_visibility="private", show_progress="hidden", queue=False)
    again.click(on_resubmit, inputs=job, outputs=said, api_name="resubmit").then(
        reload, outputs=[table, job], api_visibility="private")
    stop.click(lambda j: cancel(store, j), inputs=job, outputs=said, api_name="cancel_job").then(
        reload, outputs=[table, job], api_visibility="private")
    return {"variant": variant, "suites": suites, "engine": engine, "submit": go, "table": table, "job": job,
            "reload": [(reload, None, [table, job])]}
