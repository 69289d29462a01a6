"""Finding jobs whose worker is gone or whose deadline has passed, and deciding their fate:
requeue as the next attempt (up to max_attempts), or fail with a clear reason. The deadline
itself, and the failure it causes, belong to `core.job_lifecycle`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tass.contract.statuses import JobStatus
from tass.core.clock import database_now
from tass.core.job_lifecycle import QueuedJob, deadline_passed, fail_past_deadline
from tass.core.job_transitions import transition
from tass.core.models import Job
from tass.core.settings import Settings


def reap(factory: sessionmaker[Session], settings: Settings) -> list[QueuedJob]:
    """One sweep. Returns the jobs put back in the queue (committed: the scheduler places them
    again; their devices were freed with their placement)."""
    requeued: list[QueuedJob] = []
    with factory() as session:
        now = database_now(session)  # heartbeats were written on the same clock
        stale_before = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
        stmt = select(Job).where(
            Job.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value])
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        for job in session.scalars(stmt):
            if deadline_passed(job, settings, now):
                fail_past_deadline(session, job.id, job.attempt, settings)
                continue
            heartbeat = job.last_heartbeat_at or job.started_at
            if heartbeat is None or heartbeat >= stale_before:
                continue
            if job.status == JobStatus.CANCELLING.value:
                transition(
                    session,
                    job.id,
                    JobStatus.CANCELLED,
                    attempt=job.attempt,
                    reason="worker lost while cancelling",
                )
            elif job.attempt < settings.max_attempts:
                if transition(
                    session,
                    job.id,
                    JobStatus.QUEUED,
                    attempt=job.attempt,
                    reason="worker lost (no heartbeat)",
                    values={"attempt": job.attempt + 1, "worker_id": None},
                ):
                    requeued.append(QueuedJob(job.id, job.type, job.queue, job.attempt + 1))
            else:
                transition(
                    session,
                    job.id,
                    JobStatus.FAILED,
                    attempt=job.attempt,
                    reason="worker lost on every attempt",
                    values={"error": f"worker lost on all {job.attempt} attempts; not retried"},
                )
        session.commit()
    return requeued


def running_jobs_held_by(
    factory: sessionmaker[Session], worker_prefix: str
) -> list[tuple[str, str, str]]:
    """(job id, type, worker id) of the running jobs of one worker node."""
    with factory() as session:
        rows = session.execute(
            select(Job.id, Job.type, Job.worker_id).where(
                Job.status == JobStatus.RUNNING.value,
                func.coalesce(Job.worker_id, "").startswith(worker_prefix, autoescape=True),
            )
        ).all()
    return [(row.id, row.type, row.worker_id or "") for row in rows]


def requeue_held_by(
    factory: sessionmaker[Session],
    settings: Settings,
    worker_prefix: str,
    reason: str,
    exclude: Collection[str] = (),
) -> list[QueuedJob]:
    """Put the running jobs of one worker node (less `exclude`, jobs that hand themselves back
    after a checkpoint) back in the queue as their next attempt (warm shutdown)."""
    requeued: list[QueuedJob] = []
    with factory() as session:
        jobs = session.scalars(
            select(Job).where(
                Job.status == JobStatus.RUNNING.value,
                func.coalesce(Job.worker_id, "").startswith(worker_prefix, autoescape=True),
            )
        ).all()
        for job in jobs:
            if job.id in exclude:
                continue
            if transition(
                session,
                job.id,
                JobStatus.QUEUED,
                attempt=job.attempt,
                reason=reason,
                values={"attempt": job.attempt + 1, "worker_id": None},
            ):
                requeued.append(QueuedJob(job.id, job.type, job.queue, job.attempt + 1))
        session.commit()
    return requeued
