"""Jobs that change status the way workers change them, for webhook tests."""

from __future__ import annotations

from tass.contract.statuses import JobStatus
from tass.core.job_lifecycle import create_job
from tass.core.job_transitions import transition
from tass.core.models import utcnow


def new_job(db, tenant: str = "acme") -> str:
    with db() as session:
        job = create_job(
            session,
            job_type="train",
            tenant=tenant,
            queue="train",
            dataset={"source": "synthetic", "num_examples": 10},
            spec={"epochs": 1},
            name="hooked",
        )
        session.commit()
        return job.id


def move(db, job_id: str, *statuses: JobStatus) -> None:
    """Each status in its own committed transaction, as the worker and the API make them."""
    for status in statuses:
        with db() as session:
            values = {"started_at": utcnow()} if status == JobStatus.RUNNING else None
            assert transition(session, job_id, status, values=values)
            session.commit()
