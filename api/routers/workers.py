"""/v1/workers: connected worker nodes and queue lengths (for dashboards), and an admin's
drain switch (no new placements on a worker; optionally its train jobs checkpoint and move)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.errors import missing
from tass.api.schemas import DrainOut, QueueOut, WorkerOut, WorkersOut
from tass.core.job_queries import list_job_ids_of_tenant
from tass.core.scheduler_store import drain_worker
from tass.core.workers import list_workers, queue_depths

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", response_model=WorkersOut)
def workers(session: SessionDep, settings: SettingsDep, principal: PrincipalDep) -> WorkersOut:
    """Workers seen in the last day (alive = reported within the heartbeat timeout). A
    tenant sees only its own jobs among `current_jobs`; queue lengths count every tenant."""
    rows = list_workers(session, alive_within=settings.heartbeat_timeout_seconds)
    visible = None
    if principal.scope is not None:
        visible = list_job_ids_of_tenant(
            session, principal.scope, [j for _, _, jobs in rows for j in jobs]
        )
    out = [
        WorkerOut(
            name=w.name,
            host=w.host,
            queues=list(w.queues),
            device=w.device,
            gpus=list(w.gpus),
            started_at=w.started_at,
            last_seen_at=w.last_seen_at,
            alive=alive,
            current_jobs=[j for j in jobs if visible is None or j in visible],
            pool=w.pool,
            slots=w.slots,
            draining=w.draining,
        )
        for w, alive, jobs in rows
    ]
    depths = queue_depths(session, [settings.train_queue, settings.evaluate_queue])
    return WorkersOut(
        workers=out, queues=[QueueOut(name=n, queued=c) for n, c in sorted(depths.items())]
    )


def _set_draining(
    session: SessionDep, principal: PrincipalDep, name: str, draining: bool, preempt: bool
) -> DrainOut:
    if not principal.is_admin:
        raise HTTPException(403, detail="this needs an admin API key")
    moved = drain_worker(session, name, draining, preempt=preempt)
    if moved is None:
        raise missing("worker", name)
    return DrainOut(name=name, draining=draining, preempted=moved)


Preempt = Annotated[
    bool,
    Query(
        description="Also ask its train jobs to checkpoint and stop: they wait again and are "
        "placed elsewhere, resuming where they stopped."
    ),
]


@router.post("/{name}/drain", response_model=DrainOut)
def drain(
    name: str, session: SessionDep, principal: PrincipalDep, preempt: Preempt = False
) -> DrainOut:
    """Admin only: place nothing new on the worker; its jobs finish, or with `preempt=true`
    its train jobs checkpoint and move."""
    return _set_draining(session, principal, name, True, preempt)


@router.post("/{name}/undrain", response_model=DrainOut)
def undrain(name: str, session: SessionDep, principal: PrincipalDep) -> DrainOut:
    """Admin only: the worker takes new placements again."""
    return _set_draining(session, principal, name, False, False)
