"""Checks for a job request before it is queued (the API answers 422 with the message)."""

from __future__ import annotations

from collections.abc import Sequence

from tass.core.scheduling.capacity import request_fits
from tass.core.scheduling.model import ANY_POOL, Priority, Resources, Tenant, Worker


def check_request(
    workers: Sequence[Worker], tenant: Tenant, resources: Resources, priority: Priority
) -> tuple[str, str] | None:
    """(field, message) for a request that can never run or is not allowed, else None."""
    if resources.gpus < 0:
        return "resources.gpus", "must be 0 (CPU) or more"
    if resources.workers < 1:
        return "resources.workers", "must be at least 1"
    if priority > tenant.max_priority:
        return (
            "priority",
            f"tenant {tenant.name} may use up to {tenant.max_priority.label}, not {priority.label}",
        )
    if not request_fits(workers, resources):
        where = "any pool" if resources.pool_key == ANY_POOL else f"pool {resources.pool}"
        per = resources.unit(resources.devices_per_worker)
        return (
            "resources",
            f"no live worker in {where} can take {resources.workers} x {per}",
        )
    quota = tenant.gpu_quota.get(resources.pool) if resources.pool else None
    if quota is not None and resources.total_gpus > quota:
        return (
            "resources.gpus",
            f"exceeds the tenant's GPU quota in pool {resources.pool} ({quota})",
        )
    return None
