"""GET /v1/jobs/{id}/logs: what the job's process printed (core/job_logs.py), paged by line
offset, the last N lines, or followed as a long-poll."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from tass.api.auth import PrincipalDep
from tass.api.errors import missing
from tass.core import job_logs, job_queries
from tass.core.db import read_only_sessions
from tass.core.objectstore import ObjectStore
from tass.core.settings import Settings

router = APIRouter(prefix="/v1/jobs", tags=["logs"])


def _read(
    request: Request,
    job_id: str,
    scope: str | None,
    *,
    offset: int,
    attempt: int | None,
    tail: int | None,
    limit: int,
) -> dict[str, Any] | None:
    """One read in a short session of its own (None: no such job for this caller)."""
    store: ObjectStore = request.app.state.store
    factory = read_only_sessions(request.app.state.session_factory)
    with factory() as session:
        if not job_queries.job_visible(session, job_id, scope):
            return None
        finished = job_logs.job_finished(session, job_id)
        if tail is not None:
            page = job_logs.tail_log(session, store, job_id, lines=tail, attempt=attempt)
        else:
            page = job_logs.read_log(
                session, store, job_id, offset=offset, attempt=attempt, limit=limit
            )
    return {
        "items": [item.as_dict() for item in page.items],
        "next_offset": page.next_offset,
        "finished": finished,
    }


@router.get("/{job_id}/logs", responses={404: {"description": "No such job for this key."}})
async def job_log(
    job_id: str,
    request: Request,
    principal: PrincipalDep,
    offset: Annotated[int, Query(ge=0, le=2**62, description="First line to return.")] = 0,
    attempt: Annotated[int | None, Query(ge=1, le=1000, description="Only this attempt.")] = None,
    tail: Annotated[
        int | None, Query(ge=1, le=10000, description="The last N lines (ignores offset).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    follow: Annotated[
        bool,
        Query(
            description="Long-poll: wait (up to `wait` seconds) until there are lines after "
            "`offset` or the job is finished; call again with `next_offset`."
        ),
    ] = False,
    wait: Annotated[float, Query(ge=0, le=600)] = 25.0,
) -> JSONResponse:
    """Lines `{offset, at, attempt, stream, line}` of every attempt (or `attempt`'s), oldest
    first; `stream` is stdout, stderr or tass (the service's own notes, such as what the size
    cap dropped). Offsets number the job's lines across attempts. `finished` is true once the
    job is final: a follower stops when it is and a page comes back empty."""
    settings: Settings = request.app.state.settings
    deadline = time.monotonic() + min(wait, settings.max_long_poll_seconds)
    while True:
        body = await anyio.to_thread.run_sync(
            lambda: _read(
                request,
                job_id,
                principal.scope,
                offset=offset,
                attempt=attempt,
                tail=tail,
                limit=limit,
            )
        )
        if body is None:
            raise missing("job", job_id)
        if not follow or body["items"] or body["finished"] or time.monotonic() >= deadline:
            return JSONResponse(body)
        await anyio.sleep(settings.long_poll_interval_seconds)
