"""The job queue a team submits evaluations and engine builds to, and the workers that run them.

- :mod:`hub.queue.schema`: the ``jobs`` table (SQLAlchemy Core), in the results database.
- :mod:`hub.queue.jobs`: :class:`~hub.queue.jobs.JobQueue`: submit, claim, heartbeat, cancel, reap.
- :mod:`hub.queue.submit`: the checks a submission passes (CLI and app).
- :mod:`hub.queue.execute`: one job run through the functions ``evalhub eval`` / ``build-engine`` call.
- :mod:`hub.queue.worker`: the local executor (in this process).
- :mod:`hub.queue.ray_executor`: the Ray executor (``evalhub[ray]``; imported only when used).

Job states: PENDING -> RUNNING -> FINISHED | FAILED; PENDING or RUNNING -> CANCELLED; RUNNING ->
PENDING when its worker stops beating and it has attempts left.
"""
