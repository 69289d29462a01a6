"""Where a training attempt's TensorBoard event files are kept: one zip per segment of an
attempt, `jobs/{job}/attempt-{n}/tensorboard.zip` for its first, `tensorboard-{k}.zip` for the
k-th (an attempt that was preempted and resumed runs in segments, worker/preemption.py), each
recorded as an artifact of kind `tensorboard`. A resumed segment starts from the previous one's
files, so an attempt's newest zip holds every event file the attempt wrote."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tass.core.models import Artifact

TENSORBOARD_KIND = "tensorboard"


def tensorboard_key(job_id: str, attempt: int, segment: int = 1) -> str:
    name = "tensorboard.zip" if segment <= 1 else f"tensorboard-{segment}.zip"
    return f"jobs/{job_id}/attempt-{attempt}/{name}"


def tensorboard_artifacts(session: Session, job_id: str) -> list[Artifact]:
    """The job's TensorBoard zips, one per attempt segment that wrote them, oldest first."""
    return list(
        session.scalars(
            select(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == TENSORBOARD_KIND)
            .order_by(Artifact.id)
        )
    )


def attempt_tensorboard_artifacts(session: Session, job_id: str, attempt: int) -> list[Artifact]:
    """The zips that segments of this attempt stored, oldest first."""
    prefix = f"jobs/{job_id}/attempt-{attempt}/"
    return [a for a in tensorboard_artifacts(session, job_id) if a.key.startswith(prefix)]
