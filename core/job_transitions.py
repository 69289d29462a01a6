"""The job state machine on the database: every change is one conditional UPDATE plus a
recorded transition, so two processes can never both win the same change, and final states
never change."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from tass.contract.statuses import FINAL_STATUSES, JobStatus
from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.models import Job, JobTransition
from tass.core.webhooks import enqueue_job_event

# to-status -> the statuses it may be entered from; final statuses are never left.
ALLOWED_FROM: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED}),
    # requeued after a lost worker, or after a preemption checkpoint
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.PREEMPTED}),
    JobStatus.PREEMPTED: frozenset({JobStatus.RUNNING}),
    JobStatus.CANCELLING: frozenset({JobStatus.RUNNING}),
    JobStatus.SUCCEEDED: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLING}),
}


def record_transition(
    session: Session,
    job_id: str,
    status: JobStatus,
    *,
    from_status: str | None,
    attempt: int,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one row to the job's history (rows are never updated)."""
    session.add(
        JobTransition(
            job_id=job_id,
            from_status=from_status,
            status=status.value,
            at=at or database_now(session),
            attempt=attempt,
            reason=reason,
            details=details,
        )
    )


def transition(
    session: Session,
    job_id: str,
    to: JobStatus,
    *,
    expected: Iterable[JobStatus] | None = None,
    attempt: int | None = None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> bool:
    """Move a job to `to` if it is in one of `expected` (default: every status allowed to
    enter `to`), when given still on `attempt`, and its row meets `conditions`. Returns whether
    this call made the change. The caller commits."""
    allowed = ALLOWED_FROM[to]
    sources = allowed if expected is None else allowed & frozenset(expected)
    now = database_now(session)
    current = session.execute(select(Job.status, Job.attempt).where(Job.id == job_id)).one_or_none()
    if current is None:
        return False
    from_status = current.status
    if from_status not in {s.value for s in sources}:
        return False
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status == from_status)
        .values(status=to.value, **_scheduling_values(to, now), **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if attempt is not None:
        stmt = stmt.where(Job.attempt == attempt)
    if conditions:
        stmt = stmt.where(*conditions)
    if to in FINAL_STATUSES:
        stmt = stmt.values(finished_at=now)
    if changed_rows(session, stmt) != 1:
        return False
    record_transition(
        session,
        job_id,
        to,
        from_status=from_status,
        attempt=(values or {}).get("attempt", current.attempt),
        reason=reason,
        details=details,
        at=now,
    )
    enqueue_job_event(session, job_id, to.value)  # the webhook outbox, in this transaction
    return True


def _scheduling_values(to: JobStatus, now: datetime) -> dict[str, Any]:
    """What a status change does to the job's scheduling columns: a job queued again waits from
    now with no placement (its devices return to the pool; it keeps its submit-time place);
    a job that leaves the queue has no place in it."""
    if to == JobStatus.QUEUED:
        return {
            "queued_at": now,
            "placement": None,
            "preempt_requested_at": None,
            "queue_position": None,
            "pending_reason": None,
        }
    if to in (JobStatus.RUNNING, *FINAL_STATUSES):
        return {"queue_position": None, "pending_reason": None}
    return {}
