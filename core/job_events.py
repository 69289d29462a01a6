"""What a job's live event stream shows, read in one short session: status, progress and the
epoch metrics after a given epoch (the API's shared per-job poller calls this)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tass.core.job_queries import metric_rows
from tass.core.models import Job, JobTransition


@dataclass(frozen=True)
class JobEventState:
    """A job as its event stream sees it; `epochs` holds (epoch, values) rows, ascending."""

    status: str
    transitions: int
    last_transition_at: str | None
    progress: dict[str, Any] | None
    epochs: tuple[tuple[int, dict[str, float]], ...] = ()


def read_job_event_state(
    session: Session, job_id: str, *, after_epoch: int
) -> JobEventState | None:
    """The job's status, transition count and progress (one query) and its epoch metrics after
    `after_epoch` (one query, two when there are new rows); None when the job does not exist.

    The job is read before its metrics, so an epoch written before the job's final status is
    always among the rows returned with that status."""
    transitions = (
        select(func.count(JobTransition.id)).where(JobTransition.job_id == job_id).scalar_subquery()
    )
    last_at = (
        select(JobTransition.at)
        .where(JobTransition.job_id == job_id)
        .order_by(JobTransition.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    row = session.execute(
        select(Job.status, Job.progress, transitions, last_at).where(Job.id == job_id)
    ).one_or_none()
    if row is None:
        return None
    status, progress, count, at = row
    rows, _ = metric_rows(session, job_id, kind="epoch", after=after_epoch)
    return JobEventState(
        status=status,
        transitions=int(count or 0),
        last_transition_at=at.isoformat() if at is not None else None,
        progress=progress,
        epochs=tuple(rows),
    )
