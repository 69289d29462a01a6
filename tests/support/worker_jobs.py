"""A job as a worker holds it: inserted queued, placed on this worker's node as the scheduler
would, then claimed through the worker's own claim."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from tass.core.models import Job
from tass.worker.claim import claim
from tass.worker.context import WorkerContext


def place_here(ctx: WorkerContext, job_id: str, devices: tuple[int, ...] = (0,)) -> None:
    """What the scheduler does before it sends a job to a worker: a queued job with no
    placement is placed on this worker's node (anything else is left as it is)."""
    node = ctx.worker_id.rsplit("/", 1)[0]
    placement = {
        "pool": "default",
        "worker": node,
        "allocations": [{"worker": node, "devices": list(devices)}],
        "at": "2026-01-01T00:00:00+00:00",
    }
    with ctx.sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued", Job.placement.is_(None))
            .values(placement=placement)
        )


def claim_placed(ctx: WorkerContext, job_id: str, **resumed: Any) -> Job | None:
    """Place the job here (when it waits unplaced), then claim it as the task would."""
    place_here(ctx, job_id)
    return claim(ctx, job_id, **resumed)


def claimed_job(ctx: WorkerContext, **fields: object) -> Job:
    """A train job (tenant `t` unless `fields` say otherwise) that this worker has claimed
    (running, lease taken)."""
    with ctx.sessions.begin() as session:
        values: dict[str, object] = {"tenant": "t", "dataset": {}, **fields}
        job = Job(type="train", status="queued", queue="train", **values)
        session.add(job)
        session.flush()
        job_id = job.id
    claimed = claim_placed(ctx, job_id)
    assert claimed is not None
    return claimed


def job_row(ctx: WorkerContext, job_id: str) -> Job:
    """The job as stored now, detached from its session."""
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job
