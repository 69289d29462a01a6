"""A job's (or a sweep's, for its trials) priority and resources, checked at submit."""

from __future__ import annotations

from typing import Any

from tass.api.errors import invalid
from tass.api.schemas import SchedulingFields
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.scheduler_store import check_submission
from tass.core.scheduling import Priority, Resources
from tass.core.settings import Settings


def checked_scheduling(
    body: SchedulingFields, session: Session, principal: Principal, settings: Settings
) -> dict[str, Any]:
    """The priority and resources as core stores them (`{"priority": int, "resources": dict}`),
    after the checks that refuse a request that could never run (422 naming the field): a
    class above the tenant's `max_priority`, more GPUs than any live worker of the pool has,
    or past its GPU quota."""
    priority = Priority.parse(body.priority)
    resources = Resources(body.resources.gpus, body.resources.workers, body.resources.pool)
    problem = check_submission(session, settings, principal.tenant, resources, priority)
    if problem is not None:
        field, message = problem
        raise invalid(["body", *field.split(".")], f"{field}: {message}")
    return {"priority": int(priority), "resources": body.resources.model_dump()}
