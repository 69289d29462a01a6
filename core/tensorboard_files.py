"""Where a training attempt's TensorBoard event files are kept: one zip per attempt,
`jobs/{job}/attempt-{n}/tensorboard.zip`, recorded as an artifact of kind `tensorboard`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tass.core.models import Artifact

TENSORBOARD_KIND = "tensorboard"


def tensorboard_key(job_id: str, attempt: int) -> str:
    return f"jobs/{job_id}/attempt-{attempt}/tensorboard.zip"


def tensorboard_artifacts(session: Session, job_id: str) -> list[Artifact]:
    """The job's TensorBoard zips, one per attempt that wrote them, oldest first."""
    return list(
        session.scalars(
            select(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == TENSORBOARD_KIND)
            .order_by(Artifact.id)
        )
    )
