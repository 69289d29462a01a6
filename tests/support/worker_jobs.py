"""A job as a worker holds it: inserted queued, then claimed through the worker's own claim."""

from __future__ import annotations

from tass.core.models import Job
from tass.worker.claim import claim
from tass.worker.context import WorkerContext


def claimed_job(ctx: WorkerContext, **fields: object) -> Job:
    """A train job (tenant `t` unless `fields` say otherwise) that this worker has claimed
    (running, lease taken)."""
    with ctx.sessions.begin() as session:
        values: dict[str, object] = {"tenant": "t", "dataset": {}, **fields}
        job = Job(type="train", status="queued", queue="train", **values)
        session.add(job)
        session.flush()
        job_id = job.id
    claimed = claim(ctx, job_id)
    assert claimed is not None
    return claimed
