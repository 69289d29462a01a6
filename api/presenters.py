"""ORM rows -> response models."""

from __future__ import annotations

from tass.api.schemas import ArtifactOut, JobOut, ModelOut, TransitionOut
from tass.core.models import Job, Model
from tass.trainer.artifacts import model_format
from tass.trainer.progress import JobProgress


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        type=job.type,
        name=job.name,
        status=job.status,
        attempt=job.attempt,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        spec=job.spec,
        dataset=job.dataset,
        tags=job.tags or {},
        model_id=job.model_id,
        register_as=job.register_as,
        worker=job.worker_id,
        last_heartbeat_at=job.last_heartbeat_at,
        progress=JobProgress.model_validate(job.progress) if job.progress else None,
        metrics=job.latest_metrics or {},
        result=job.result,
        error=job.error,
        transitions=[
            TransitionOut(
                status=t.status,
                at=t.at,
                attempt=t.attempt,
                reason=t.reason,
                resumed_from_epoch=(t.details or {}).get("resumed_from_epoch"),
                details=t.details,
            )
            for t in job.transitions
        ],
    )


def model_out(model: Model) -> ModelOut:
    return ModelOut(
        id=model.id,
        job_id=model.job_id,
        name=model.name,
        created_at=model.created_at,
        metrics=model.metrics or {},
        class_names=model.class_names,
        artifacts=[
            ArtifactOut(format=fmt, size=a.size, sha256=a.sha256)
            for a in model.artifacts
            if (fmt := model_format(a.kind)) is not None
        ],
    )
