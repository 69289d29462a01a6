"""/v1/jobs/{id}/metrics: metric history (the live stream is in job_events.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep
from tass.api.routers.jobs import require_visible_job
from tass.api.schemas import MetricPage, MetricRow
from tass.core import job_queries

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
    require_visible_job(session, job_id, principal)
    rows, next_after = job_queries.metric_rows(
        session, job_id, kind=kind, after=-1 if cursor is None else cursor, limit=limit, every=every
    )
    return MetricPage(
        items=[MetricRow(kind=kind, step=step, values=values) for step, values in rows],
        next_cursor=None if next_after is None else str(next_after),
    )
