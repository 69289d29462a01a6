"""/v1/jobs: submit, list, read and cancel training and evaluation jobs."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Response, status
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from api.auth import PrincipalDep
from api.deps import ProducerDep, SessionDep, SettingsDep
from api.presenters import job_out
from api.schemas import EvaluateJobCreate, JobCreate, JobOut, JobPage, TrainJobCreate
from core import jobs as job_queries
from core.apikeys import Principal
from core.datapaths import DatasetPathError, resolve_dataset_path
from core.jobstore import transition
from core.models import Job
from core.pagination import BadCursor
from core.queue import EVALUATE_TASK, TRAIN_TASK
from core.settings import Settings
from core.states import FINAL_STATUSES, JobStatus, JobType
from trainer.spec import DatasetSpec

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
log = logging.getLogger(__name__)


def field_error(loc: list[str | int], message: str, code: int = 422) -> HTTPException:
    """An error in FastAPI's validation shape, naming the offending field."""
    return HTTPException(
        code, detail=[{"loc": ["body", *loc], "msg": message, "type": "value_error"}]
    )


def _checked_dataset(dataset: DatasetSpec, settings: Settings) -> dict[str, object]:
    data = dataset.model_dump(mode="json")
    if dataset.path is not None:
        try:
            data["path"] = str(resolve_dataset_path(dataset.path, settings.resolved_data_roots))
        except DatasetPathError as exc:
            raise field_error(["dataset", "path"], f"dataset.path {exc}") from exc
    return data


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def submit_job(
    body: Annotated[JobCreate, Body()],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    producer: ProducerDep,
    principal: PrincipalDep,
) -> JobOut:
    """Validate, store the job, commit, and only then enqueue it by task name."""
    dataset = _checked_dataset(body.dataset, settings)
    active = job_queries.count_active_jobs(session, principal.tenant)
    if active >= settings.max_active_jobs_per_tenant:
        raise HTTPException(
            429,
            detail=f"tenant {principal.tenant!r} already has {active} queued or running jobs "
            f"(limit {settings.max_active_jobs_per_tenant})",
            headers={"Retry-After": "30"},
        )
    if isinstance(body, TrainJobCreate):
        task, queue = TRAIN_TASK, settings.train_queue
        job = job_queries.create_job(
            session,
            job_type=JobType.TRAIN.value,
            tenant=principal.tenant,
            queue=queue,
            dataset=dataset,
            spec=body.spec.model_dump(mode="json"),
            name=body.name,
            tags=body.tags,
        )
    else:
        assert isinstance(body, EvaluateJobCreate)
        if job_queries.get_model(session, body.model_id, principal.scope) is None:
            raise field_error(["model_id"], f"model_id: no model {body.model_id!r}")
        task, queue = EVALUATE_TASK, settings.evaluate_queue
        job = job_queries.create_job(
            session,
            job_type=JobType.EVALUATE.value,
            tenant=principal.tenant,
            queue=queue,
            dataset=dataset,
            model_id=body.model_id,
            name=body.name,
            tags=body.tags,
        )
    session.commit()
    try:
        producer.send_task(task, args=[job.id], queue=queue, task_id=f"{job.id}-1")
    except (BrokerError, OSError) as exc:
        log.error("could not enqueue job %s: %s", job.id, exc)
        transition(session, job.id, JobStatus.FAILED, reason="broker unavailable at submit")
        session.commit()
        raise HTTPException(
            503, detail="the job queue is unavailable; the job was not queued"
        ) from exc
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    session.refresh(job)
    return job_out(job)


@router.get("", response_model=JobPage)
def list_jobs(
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    type_: Annotated[Literal["train", "evaluate"] | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """Jobs newest first, optionally filtered; follow `next_cursor` for the next page."""
    try:
        rows, next_cursor = job_queries.list_jobs(
            session,
            limit=min(limit, settings.max_page_size),
            cursor=cursor,
            status=status_.value if status_ else None,
            job_type=type_,
            scope=principal.scope,
        )
    except BadCursor as exc:
        raise HTTPException(422, detail=f"cursor: {exc}") from exc
    return JobPage(items=[job_out(job) for job in rows], next_cursor=next_cursor)


def require_job(session: Session, job_id: str, principal: Principal) -> Job:
    """The caller's job; another tenant's job is reported as missing (404), not forbidden."""
    job = job_queries.get_job(session, job_id, principal.scope)
    if job is None:
        raise HTTPException(404, detail=f"no job {job_id!r}")
    return job


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobOut:
    return job_out(require_job(session, job_id, principal))


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobOut:
    """A queued job is cancelled at once (it never starts); a running one goes to
    `cancelling` and its worker stops it within one batch."""
    job = require_job(session, job_id, principal)
    done = transition(
        session, job_id, JobStatus.CANCELLED, expected={JobStatus.QUEUED}, reason="cancel requested"
    ) or transition(session, job_id, JobStatus.CANCELLING, reason="cancel requested")
    if not done:
        session.refresh(job)
        if JobStatus(job.status) in FINAL_STATUSES:
            raise HTTPException(409, detail=f"job {job_id} is already {job.status}")
    session.commit()
    session.refresh(job)
    return job_out(job)
