"""/v1/queue: the jobs waiting to be placed, in scheduling order, with why each waits."""

from __future__ import annotations

from fastapi import APIRouter

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep
from tass.api.pagination import CursorQuery, Page, PageLimit
from tass.api.presenters import from_row, resources_out
from tass.api.scheduling_schemas import QueuedJobOut
from tass.core.scheduler_store import waiting_jobs
from tass.core.scheduling import Priority

router = APIRouter(prefix="/v1/queue", tags=["scheduling"])


@router.get("", response_model=Page[QueuedJobOut])
def queue(
    session: SessionDep, principal: PrincipalDep, limit: PageLimit, cursor: CursorQuery = None
) -> Page[QueuedJobOut]:
    """Waiting jobs (queued, not yet placed on a worker) in the order the scheduler places
    them: by `queue_position`, then submit time for jobs it has not ranked yet. A tenant sees
    its own jobs (positions still count everyone's), an admin all."""
    rows, next_cursor = waiting_jobs(session, scope=principal.scope, limit=limit, cursor=cursor)
    items = [
        from_row(
            QueuedJobOut,
            job,
            priority=Priority(job.priority).label,
            resources=resources_out(job.resources),
        )
        for job in rows
    ]
    return Page[QueuedJobOut](items=items, next_cursor=next_cursor)
