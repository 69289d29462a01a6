"""ORM rows -> response models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from tass.api.schemas import ArtifactOut, JobOut, ModelOut, TransitionOut
from tass.contract.artifacts import model_format
from tass.contract.progress import JobProgress
from tass.core.job_queries import JobSnapshot
from tass.core.models import Job, JobTransition, Model
from tass.core.redaction import path_free
from tass.core.scheduler_store import allocations
from tass.core.scheduling import Priority

Schema = TypeVar("Schema", bound=BaseModel)


def from_row(schema: type[Schema], row: object, **computed: Any) -> Schema:
    """`schema` with each field read from `row`'s attribute of the same name, except the
    fields given in `computed` (renamed, defaulted or derived ones)."""
    copied = {name: getattr(row, name) for name in schema.model_fields if name not in computed}
    return schema(**copied, **computed)


def transition_out(transition: JobTransition | Any) -> TransitionOut:
    """From a JobTransition, or a transition row of a JobSnapshot (same columns)."""
    details = transition.details or {}
    return from_row(
        TransitionOut,
        transition,
        resumed_from_epoch=details.get("resumed_from_epoch"),
        resumed_from_step=details.get("resumed_from_step"),
    )


def job_out(job: Job | JobSnapshot) -> JobOut:
    return from_row(
        JobOut,
        job,
        tags=job.tags or {},
        worker=job.worker_id,
        priority=Priority(job.priority).label,
        resources=resources_out(job.resources),
        placement=placement_out(job.placement),
        progress=JobProgress.model_validate(job.progress) if job.progress else None,
        metrics=job.latest_metrics or {},
        error=path_free(job.error) if job.error else None,  # also rows recorded before redaction
        transitions=[transition_out(t) for t in job.transitions],
    )


def resources_out(resources: dict[str, Any] | None) -> dict[str, Any]:
    """A job's resources with the defaults filled in (a null column: one CPU slot, any pool)."""
    return {"gpus": 0, "workers": 1, "pool": None, **(resources or {})}


def placement_out(placement: dict[str, Any] | None) -> dict[str, Any] | None:
    """Where the scheduler placed a job: its pool, worker and devices (no bookkeeping)."""
    if placement is None:
        return None
    return {
        "pool": placement.get("pool"),
        "worker": placement.get("worker"),
        "devices": [d for _, devices in allocations(placement) for d in devices],
    }


def model_out(model: Model) -> ModelOut:
    return from_row(
        ModelOut,
        model,
        metrics=model.metrics or {},
        artifacts=[
            from_row(ArtifactOut, a, format=fmt)
            for a in model.artifacts
            if (fmt := model_format(a.kind)) is not None
        ],
    )
