"""/v1/jobs: submit, list, read and cancel training and evaluation jobs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, HTTPException, Query, Request, Response, status

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.errors import found, invalid, missing
from tass.api.fine_tuning import resolved_train_spec
from tass.api.job_datasets import checked_dataset
from tass.api.job_scheduling import checked_scheduling
from tass.api.long_poll import (
    RenderedJob,
    etag_matches,
    job_page_body,
    job_status,
    render_job_in_own_session,
    rendered_jobs,
    wait_for_change,
)
from tass.api.pagination import CursorQuery, PageLimit
from tass.api.presenters import from_row, job_out
from tass.api.schemas import (
    ArtifactRecord,
    EvaluateJobCreate,
    JobCreate,
    JobOut,
    JobPage,
    TrainJobCreate,
)
from tass.api.strict_json import StrictJSONRoute
from tass.contract.statuses import FINAL_STATUSES, JobStatus, JobType
from tass.core import job_lifecycle, job_queries
from tass.core.apikeys import Principal
from tass.core.change_feed import ChangeFeed
from tass.core.db import Session, read_only_sessions
from tass.core.models import Job
from tass.core.registry import ModelRefNotFound
from tass.core.settings import Settings

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=StrictJSONRoute)


def field_error(loc: list[str | int], message: str) -> HTTPException:
    """A 422 naming a field of the request body."""
    return invalid(["body", *loc], message)


def _new_job(
    body: TrainJobCreate | EvaluateJobCreate,
    dataset: dict[str, object],
    principal: Principal,
    session: Session,
    settings: Settings,
) -> job_lifecycle.NewJob:
    new = job_lifecycle.NewJob(
        job_type=JobType.TRAIN if isinstance(body, TrainJobCreate) else JobType.EVALUATE,
        tenant=principal.tenant,
        dataset=dataset,
        name=body.name,
        tags=body.tags,
        **checked_scheduling(body, session, principal, settings),
    )
    if isinstance(body, TrainJobCreate):
        spec = resolved_train_spec(body.spec, session, principal)  # init_from: the model id
        return replace(new, spec=spec, register_as=body.register_as)
    # an evaluation's options are its spec (absent when it has none)
    options = {"test_time_flip": True} if body.test_time_flip else None
    return replace(new, model_ref=body.model_id, spec=options)


def _submit(
    session: Session,
    new: job_lifecycle.NewJob,
    settings: Settings,
    principal: Principal,
    idempotency_key: str | None,
    body_sha256: str,
) -> job_lifecycle.Submission:
    """core's submit; its refusals (quota, idempotency conflict) answer as they say
    (tass.api.errors), an evaluated model that is not found names the `model_id` field."""
    try:
        return job_lifecycle.submit(
            session,
            new,
            settings,
            scope=principal.scope,
            idempotency_key=idempotency_key,
            body_sha256=body_sha256,
        )
    except ModelRefNotFound as exc:  # the job records the model a reference names now
        raise field_error(["model_id"], f"model_id: {exc}") from exc


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def submit_job(
    body: Annotated[JobCreate, Body()],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Repeating a POST with the same key returns the same job.",
        ),
    ] = None,
) -> JobOut:
    """Validate, store the job and commit: it waits in the database until the scheduler
    places it on a worker (README "Scheduling")."""
    dataset = checked_dataset(body.dataset, settings, session, principal)
    body_sha256 = hashlib.sha256(
        json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    ).hexdigest()
    new = _new_job(body, dataset, principal, session, settings)
    submitted = _submit(session, new, settings, principal, idempotency_key, body_sha256)
    job = submitted.job
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        return job_out(job)
    return job_out(job)


@router.get("", response_model=JobPage)
def list_jobs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: PageLimit,
    status_: Annotated[JobStatus | None, Query(alias="status")] = None,
    type_: Annotated[Literal["train", "evaluate"] | None, Query(alias="type")] = None,
    tag: Annotated[
        str | None,
        Query(
            max_length=330,
            # No control characters: a NUL cannot be a JSON path key (SQLite) or text (PostgreSQL).
            pattern=r"^[^=\x00-\x1f\x7f]{1,64}=[^\x00-\x1f\x7f]{0,256}$",
            description="key=value",
        ),
    ] = None,
    cursor: CursorQuery = None,
    sweep: Annotated[
        str | None, Query(max_length=64, description="Only the trials of this sweep.")
    ] = None,
) -> Response:
    """Jobs newest first, optionally filtered; follow `next_cursor` for the next page. One
    query for the page's ids; each job's status as a poll of it answers (the read cache),
    two queries for all those not cached."""
    feed: ChangeFeed = request.app.state.change_feed
    epoch = feed.epoch  # before the session's first read
    tag_filter = None
    if tag:  # the pattern above guarantees the `=`
        key, _, value = tag.partition("=")
        tag_filter = (key, value)
    job_ids, next_cursor = job_queries.list_job_ids(
        session,
        limit=limit,
        cursor=cursor,
        status=status_.value if status_ else None,
        job_type=type_,
        scope=principal.scope,
        tag=tag_filter,
        sweep_id=sweep,
    )
    jobs = rendered_jobs(feed, session, job_ids, epoch)
    return Response(job_page_body(jobs, next_cursor), media_type="application/json")


def require_job(session: Session, job_id: str, principal: Principal) -> Job:
    """The caller's job; another tenant's job is reported as missing (404), not forbidden."""
    return found(job_queries.get_job(session, job_id, principal.scope), "job", job_id)


def require_visible_job(session: Session, job_id: str, principal: Principal) -> None:
    """404 unless the caller may see the job (one query; for endpoints that only need to
    know, such as metric history and event streams)."""
    if not job_queries.job_visible(session, job_id, principal.scope):
        raise missing("job", job_id)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses={304: {"description": "The job still has the ETag sent in If-None-Match."}},
)
async def get_job(
    job_id: str,
    request: Request,
    principal: PrincipalDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=600,
            description="Long-poll: answer as soon as the job differs from If-None-Match (or, "
            "without it, from its state now), is final, or after this many seconds "
            "(capped by the server's TASS_MAX_LONG_POLL_SECONDS).",
        ),
    ] = 0,
    if_none_match: Annotated[str | None, Header(max_length=2048)] = None,
) -> Response:
    """The job, with an `ETag`; `If-None-Match` with that tag answers 304 while it is
    unchanged. From the process's read cache while the job is unchanged, else two queries
    (the job row, its transitions) in a short session of its own, plus one for a key the
    cache does not hold. The busiest endpoint: it declares no session or settings
    dependency (FastAPI spends tens of microseconds on each), and a long-poll waits with no
    session open."""
    settings: Settings = request.app.state.settings
    feed = request.app.state.change_feed
    factory = read_only_sessions(request.app.state.session_factory)

    def read() -> Awaitable[RenderedJob | None]:
        return job_status(feed, job_id, lambda: render_job_in_own_session(factory, job_id))

    job = await read()
    seconds = min(wait, settings.max_long_poll_seconds)
    if job is not None and principal.sees(job.tenant) and seconds > 0:
        job = await wait_for_change(
            request,
            read,
            job,
            if_none_match or job.etag,
            seconds,
            settings.long_poll_interval_seconds,
        )
    if job is None or not principal.sees(job.tenant):
        raise missing("job", job_id)
    if etag_matches(if_none_match, job.etag):
        return Response(status_code=304, headers={"ETag": job.etag})
    return Response(job.body, media_type="application/json", headers={"ETag": job.etag})


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, principal: PrincipalDep) -> JobOut:
    """A queued job is cancelled at once (it never starts); a running one goes to
    `cancelling` and its worker stops it within one batch."""
    job = require_job(session, job_id, principal)
    if not job_lifecycle.request_cancel(session, job_id):
        session.refresh(job)
        if JobStatus(job.status) in FINAL_STATUSES:
            raise HTTPException(409, detail=f"job {job_id} is already {job.status}")
    session.flush()
    session.refresh(job)
    return job_out(job)


@router.get("/{job_id}/artifacts", response_model=list[ArtifactRecord])
def job_artifacts(
    job_id: str, session: SessionDep, principal: PrincipalDep
) -> list[ArtifactRecord]:
    """Checkpoints and model files the job stored, with size and sha256."""
    require_visible_job(session, job_id, principal)
    return [from_row(ArtifactRecord, a) for a in job_queries.job_artifacts(session, job_id)]
