"""/v1/workers: connected worker nodes and queue lengths (for dashboards)."""

from __future__ import annotations

from fastapi import APIRouter

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.schemas import QueueOut, WorkerOut, WorkersOut
from tass.core.job_queries import list_job_ids_of_tenant
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
        )
        for w, alive, jobs in rows
    ]
    depths = queue_depths(session, [settings.train_queue, settings.evaluate_queue])
    return WorkersOut(
        workers=out, queues=[QueueOut(name=n, queued=c) for n, c in sorted(depths.items())]
    )
