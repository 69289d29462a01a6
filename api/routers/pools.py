"""/v1/pools: each pool's live workers, their devices, what is placed on them and what waits."""

from __future__ import annotations

from fastapi import APIRouter

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.scheduling_schemas import PoolOut, PoolsOut, PoolWorkerOut
from tass.core.job_queries import list_job_ids_of_tenant
from tass.core.scheduler_store import pool_use

router = APIRouter(prefix="/v1/pools", tags=["scheduling"])


@router.get("", response_model=PoolsOut)
def pools(session: SessionDep, settings: SettingsDep, principal: PrincipalDep) -> PoolsOut:
    """Pools with a live worker or a job waiting for them: devices, free and used (devices
    reserved by placements), each worker's share, and how many jobs wait. A tenant sees only
    its own jobs among `running_jobs`; the counts are everyone's."""
    found, any_pool = pool_use(session, settings)
    visible = None
    if principal.scope is not None:
        ids = [j for pool in found for w in pool.workers for j in w.jobs]
        visible = list_job_ids_of_tenant(session, principal.scope, ids)
    return PoolsOut(
        pools=[
            PoolOut(
                name=pool.name,
                devices=pool.devices,
                free=pool.free,
                used=pool.used,
                waiting=pool.waiting,
                workers=[
                    PoolWorkerOut(
                        name=w.name,
                        device=w.device,
                        slots=w.slots,
                        free=w.free,
                        used=w.used,
                        draining=w.draining,
                        running_jobs=[j for j in w.jobs if visible is None or j in visible],
                    )
                    for w in pool.workers
                ],
            )
            for pool in found
        ],
        waiting_any_pool=any_pool,
    )
