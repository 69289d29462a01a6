"""Request and response bodies of the scheduler's endpoints: the waiting queue, pools, and
tenants' scheduling settings (README "Scheduling")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from tass.api.schemas import POOL_PATTERN, InputModel, PriorityName


class QueuedJobOut(BaseModel):
    """A job waiting to be placed, where it stands and why it waits."""

    id: str
    name: str | None
    type: str
    tenant: str
    priority: PriorityName
    resources: dict[str, Any]
    queue_position: int | None = Field(
        description="1-based place in scheduling order (null until the scheduler's next cycle)."
    )
    pending_reason: str | None
    created_at: datetime


class PoolWorkerOut(BaseModel):
    name: str
    device: str
    slots: int = Field(description="Devices the scheduler places on: GPUs, or CPU slots.")
    free: int
    used: int
    draining: bool
    running_jobs: list[str] = Field(description="Jobs placed on its devices (placed or running).")


class PoolOut(BaseModel):
    name: str
    devices: int
    free: int = Field(description="Free devices on workers that are not draining.")
    used: int
    waiting: int = Field(description="Jobs waiting that ask for this pool by name.")
    workers: list[PoolWorkerOut]


class PoolsOut(BaseModel):
    pools: list[PoolOut]
    waiting_any_pool: int = Field(description="Jobs waiting that take any pool.")


PoolName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=POOL_PATTERN)]


class TenantSettingsIn(InputModel):
    """An admin's scheduling settings for a tenant; a field left out keeps its value."""

    weight: float | None = Field(
        None, gt=0, le=1_000_000, description="Its weight in the fair share (default 1)."
    )
    max_priority: PriorityName | None = Field(
        None, description="The highest class its jobs may ask for (default `high`)."
    )
    gpu_quota: dict[PoolName, Annotated[int, Field(ge=0, le=1_000_000)]] | None = Field(
        None,
        max_length=100,
        description="Most GPUs it may hold at once per pool (a pool left out: no limit).",
    )


class TenantSettingsOut(BaseModel):
    name: str
    weight: float
    max_priority: PriorityName
    gpu_quota: dict[str, int]
