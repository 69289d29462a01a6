"""Claiming a job and ending it: thin wrappers over the state machine for the worker."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select

from tass.core.clock import database_now
from tass.core.jobstore import transition
from tass.core.models import Job
from tass.core.states import JobStatus
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 4000


def claim(ctx: WorkerContext, job_id: str, resumed_from_epoch: int | None = None) -> Job | None:
    """queued -> running with one conditional UPDATE; None if someone else has it or it is
    no longer queued (cancelled, already running under a live lease, or finished)."""
    with ctx.sessions.begin() as session:
        now = database_now(session)  # leases and deadlines run on the database's clock
        won = transition(
            session,
            job_id,
            JobStatus.RUNNING,
            expected={JobStatus.QUEUED},
            reason="claimed",
            details={
                "worker": ctx.worker_id,
                **({"resumed_from_epoch": resumed_from_epoch} if resumed_from_epoch else {}),
            },
            values={
                "worker_id": ctx.worker_id,
                # the deadline counts from the first start, across attempts
                "started_at": func.coalesce(Job.started_at, now),
                "last_heartbeat_at": now,
            },
        )
        if not won:
            return None
        job = session.scalar(select(Job).where(Job.id == job_id))
        session.expunge(job)
        return job


def finish(
    ctx: WorkerContext,
    job: Job,
    status: JobStatus,
    *,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
    session: Any = None,
) -> bool:
    """Move this attempt of the job to a final status (no-op if it already left it)."""
    if session is None:
        with ctx.sessions.begin() as own:
            return finish(ctx, job, status, reason=reason, values=values, session=own)
    return transition(
        session,
        job.id,
        status,
        expected={JobStatus.RUNNING, JobStatus.CANCELLING},
        attempt=job.attempt,
        reason=reason,
        values=values,
    )


def fail(ctx: WorkerContext, job: Job, exc: BaseException) -> None:
    message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    log.error("job %s failed: %s", job.id, message)
    finish(ctx, job, JobStatus.FAILED, reason="error", values={"error": message})


def end_stopped(ctx: WorkerContext, job: Job) -> None:
    """Training stopped early: a cancel request ends as cancelled; a lost lease ends nothing
    (another attempt owns the job now)."""
    with ctx.sessions.begin() as session:
        current = session.scalar(select(Job.status).where(Job.id == job.id))
        if current == JobStatus.CANCELLING.value:
            transition(
                session,
                job.id,
                JobStatus.CANCELLED,
                attempt=job.attempt,
                reason="cancelled while running",
            )
