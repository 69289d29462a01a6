"""/v1/jobs/{id}/metrics and /events: metric history and a live server-sent event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from api.auth import PrincipalDep
from api.deps import SessionDep, SettingsDep
from api.routers.jobs import require_job
from api.schemas import MetricPage, MetricRow
from core import jobs as job_queries
from core.models import Job
from core.states import FINAL_STATUSES, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["metrics"])


@router.get("/{job_id}/metrics", response_model=MetricPage)
def job_metrics(
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    kind: Literal["epoch", "step"] = "epoch",
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    cursor: Annotated[
        int | None,
        Query(ge=0, le=2**31 - 1, description="Return steps after this one."),  # int4 step
    ] = None,
    every: Annotated[int, Query(ge=1, le=10000, description="Keep every N-th row.")] = 1,
) -> MetricPage:
    """Per-epoch (step = epoch number) or per-step metric history, ascending."""
    require_job(session, job_id, principal)
    rows, next_after = job_queries.metric_rows(
        session, job_id, kind=kind, after=-1 if cursor is None else cursor, limit=limit, every=every
    )
    return MetricPage(
        items=[MetricRow(kind=kind, step=step, values=values) for step, values in rows],
        next_cursor=None if next_after is None else str(next_after),
    )


def _snapshot(factory: sessionmaker[Session], job_id: str, after_epoch: int) -> dict[str, Any]:
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        rows, _ = job_queries.metric_rows(session, job_id, kind="epoch", after=after_epoch)
        at = job.transitions[-1].at.isoformat() if job.transitions else None
        return {"status": job.status, "at": at, "progress": job.progress, "epochs": rows}


@router.get("/{job_id}/events")
def job_events(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    principal: PrincipalDep,
) -> EventSourceResponse:
    """Server-sent events `status`, `progress` and `metrics` until the job is final."""
    factory: sessionmaker[Session] = request.app.state.session_factory

    require_job(session, job_id, principal)
    session.close()  # the stream polls with short sessions of its own

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_status, last_progress, last_epoch = None, None, -1
        while True:
            snap = await run_in_threadpool(_snapshot, factory, job_id, last_epoch)
            for step, values in snap["epochs"]:
                data = {"kind": "epoch", "step": step, "values": values}
                yield {"event": "metrics", "data": json.dumps(data)}
                last_epoch = step
            if snap["progress"] and snap["progress"] != last_progress:
                last_progress = snap["progress"]
                yield {"event": "progress", "data": json.dumps(last_progress)}
            if snap["status"] != last_status:
                last_status = snap["status"]
                yield {
                    "event": "status",
                    "data": json.dumps({"status": last_status, "at": snap["at"]}),
                }
            if JobStatus(last_status) in FINAL_STATUSES or await request.is_disconnected():
                return
            await asyncio.sleep(settings.sse_poll_seconds)

    return EventSourceResponse(stream(), ping=15)
