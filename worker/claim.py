"""Claiming a job and ending it: the worker's side of `core.job_lifecycle`, each step in a
transaction of its own on the worker's sessions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tass.contract.progress import with_phase
from tass.contract.statuses import JobStatus
from tass.core import job_lifecycle
from tass.core.db import Session
from tass.core.models import Job
from tass.core.redaction import path_free, server_folders
from tass.worker.context import WorkerContext
from tass.worker.devices import pin_devices

log = logging.getLogger(__name__)


def claim(
    ctx: WorkerContext,
    job_id: str,
    resumed_from_epoch: int | None = None,
    resumed_from_step: int | None = None,
) -> Job | None:
    """queued -> running, in phase `loading` from the same transaction on; None if someone
    else has it or it is no longer queued. The job returned holds the progress it had before
    (a resumed job's last epoch and steps)."""
    with ctx.sessions.begin() as session:
        job = job_lifecycle.claim(
            session, job_id, ctx.worker_id, resumed_from_epoch, resumed_from_step
        )
        if job is not None:
            loading = with_phase(job.progress, "loading")
            job_lifecycle.heartbeat(session, job.id, job.attempt, progress=loading)
    if job is not None:
        pinned = pin_devices(job.placement, int((job.resources or {}).get("gpus", 0)))
        if pinned is not None:
            log.info("job %s runs on GPUs %s", job.id, pinned)
    return job


def finish(
    ctx: WorkerContext,
    job: Job,
    status: JobStatus,
    *,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
    session: Session | None = None,
) -> bool:
    """Move this attempt of the job to a final status (no-op if it already left it); in
    `session`'s transaction when given (the caller commits), else in one of its own."""
    if session is None:
        with ctx.sessions.begin() as own:
            return finish(ctx, job, status, reason=reason, values=values, session=own)
    return job_lifecycle.finish(session, job.id, job.attempt, status, reason=reason, values=values)


def fail(
    ctx: WorkerContext,
    job: Job,
    exc: BaseException,
    sync_log: Callable[[], int | None] | None = None,
) -> None:
    """Fail this attempt with the exception's message, without server paths (a dataset shows
    as named under the data roots, other files by name); the traceback goes to the log, and
    with the job's captured log (`sync_log`) the message names the traceback's first line."""
    first_line = sync_log() if sync_log else None
    log.error("job %s attempt %s failed", job.id, job.attempt, exc_info=exc)
    message = f"{type(exc).__name__}: {exc}"
    if sync_log and sync_log() is not None and first_line is not None:
        message += f" (traceback at line {first_line} of the job's log: tass logs {job.id})"
    error = path_free(message, server_folders(ctx.settings))
    with ctx.sessions.begin() as session:
        job_lifecycle.fail(session, job.id, job.attempt, error)


def end_stopped(ctx: WorkerContext, job: Job) -> None:
    """Training stopped early: a cancel request ends as cancelled; a lost lease ends nothing
    (another attempt owns the job now)."""
    with ctx.sessions.begin() as session:
        job_lifecycle.end_stopped(session, job.id, job.attempt)
