"""GET /v1/jobs/{id}/events: the job's live server-sent events (see api/streams.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette.sse import EventSourceResponse

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep
from tass.api.routers.jobs import require_visible_job
from tass.api.streams import JobEventHub, StreamCursor, stream_job_events

router = APIRouter(prefix="/v1/jobs", tags=["metrics"])

PING_SECONDS = 15


@router.get(
    "/{job_id}/events",
    responses={429: {"description": "Too many open event streams for this key or server."}},
)
async def job_events(
    job_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    last_event_id: Annotated[
        str | None,
        Header(description="The `id` of the last event seen: the stream resumes after it."),
    ] = None,
) -> EventSourceResponse:
    """Server-sent events `status`, `progress` and `metrics` until the job is final.

    Each event has an `id`; reconnecting with `Last-Event-ID` resumes after it, with nothing
    lost or repeated. The server ends a stream early with an `end` event whose `reason` is
    `lifetime` (reconnect), `revoked` (the key was revoked), `session_ended` (the dashboard
    login session it was opened with was logged out or expired) or `gone`. Open streams are capped
    per API key and per server process: past the cap the answer is 429 with `Retry-After`."""
    # Async on purpose: the session the key was checked with is used and closed right here, on
    # the event loop (one primary-key read), instead of waiting, connection in hand, for a free
    # thread-pool thread while hundreds of streams open at once.
    require_visible_job(session, job_id, principal)
    session.close()  # the stream never holds a session: a shared poller reads the job
    hub: JobEventHub = request.app.state.event_hub
    subscription = hub.open(job_id, principal.key_id, principal.session_id)  # 429 at the cap
    cursor = StreamCursor.decode(last_event_id)
    return EventSourceResponse(stream_job_events(subscription, cursor), ping=PING_SECONDS)
