"""The scheduler's inputs and outputs: plain, immutable data with no database behind it.

The scheduler loop builds a `Snapshot` (workers and their free devices, the waiting queue, the
running jobs, the tenants and their decayed usage) and `schedule()` answers a `Decision`; the
simulation in benchmarks/scheduler_sim.py builds the same types from its simulated cluster."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tass.core.scheduling.queue import WaitingQueue

ANY_POOL = "*"
"""The pool of a job that asked for none: it may run in any pool with the right kind of device."""


class Priority(IntEnum):
    """Named priority classes; a higher class is placed first and may preempt a lower one."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @classmethod
    def parse(cls, name: str) -> Priority:
        return cls[name.upper()]

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Resources:
    """What a job asks for: `gpus` on each of `workers` workers (0 GPUs = one CPU slot each)."""

    gpus: int = 0
    workers: int = 1
    pool: str | None = None

    @property
    def devices_per_worker(self) -> int:
        """Devices taken on each worker: GPUs, or one slot for a CPU job."""
        return self.gpus if self.gpus > 0 else 1

    @property
    def total_devices(self) -> int:
        """Devices across all its workers: what fair share and usage count."""
        return self.devices_per_worker * self.workers

    @property
    def total_gpus(self) -> int:
        return self.gpus * self.workers

    @property
    def pool_key(self) -> str:
        return self.pool if self.pool is not None else ANY_POOL

    def unit(self, count: int) -> str:
        """'4 GPUs', '1 slot': the device word for this request."""
        word = "GPU" if self.gpus > 0 else "slot"
        return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Worker:
    """A live worker: its pool, how many devices it has and which of them are free.

    GPU workers count GPUs; CPU workers (`gpu=False`) count slots and take only 0-GPU jobs."""

    worker_id: str
    pool: str
    total: int
    free: tuple[int, ...]
    gpu: bool = True
    draining: bool = False


@dataclass(frozen=True)
class WaitingJob:
    """A queued job. `submitted_at` orders it (a preempted job keeps its place); `waiting_since`
    is when its current wait began (grace before preempting, bound before reserving)."""

    job_id: str
    tenant: str
    priority: Priority
    resources: Resources
    submitted_at: float
    waiting_since: float


@dataclass(frozen=True)
class Allocation:
    """The devices a running job holds on one worker."""

    worker_id: str
    devices: tuple[int, ...]


@dataclass(frozen=True)
class RunningJob:
    """A running job: a possible preemption victim, and its tenant's current allocation.
    `stopping` marks a job already asked to checkpoint and stop (its devices free soon)."""

    job_id: str
    tenant: str
    priority: Priority
    resources: Resources
    pool: str
    allocations: tuple[Allocation, ...]
    started_at: float
    stopping: bool = False


@dataclass(frozen=True)
class Tenant:
    """Admin settings of a tenant: its weight in the fair share, its highest priority class,
    and an optional GPU quota per pool (GPUs held at once)."""

    name: str
    weight: float = 1.0
    max_priority: Priority = Priority.HIGH
    gpu_quota: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerConfig:
    """Tunables of the policy (defaults fit a training cluster: hours-long jobs)."""

    half_life_s: float = 3600.0
    """Half-life of the decayed usage that orders tenants within a class."""
    reserve_after_s: float = 1800.0
    """A job that does not fit and has waited this long reserves capacity (no more backfill
    onto the workers it needs)."""
    reservations_per_pool: int = 1
    """How many starving jobs may hold a reservation in one pool at once."""
    preemption_grace_s: Mapping[Priority, float] = field(
        default_factory=lambda: {Priority.URGENT: 0.0, Priority.HIGH: 120.0, Priority.NORMAL: 600.0}
    )
    """How long a job of each class waits for capacity before it preempts a lower class (a
    class missing here never preempts)."""

    @property
    def mean_life_s(self) -> float:
        """The decay's mean life: a steady allocation of A GPUs settles at A * this usage."""
        return self.half_life_s / math.log(2)


@dataclass(frozen=True)
class Snapshot:
    """Everything one scheduling cycle looks at. `usage` maps (tenant, pool) to decayed
    GPU-seconds as of the cycle's `now` (see usage.py)."""

    workers: Sequence[Worker]
    waiting: WaitingQueue
    running: Sequence[RunningJob] = ()
    tenants: Mapping[str, Tenant] = field(default_factory=dict)
    usage: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def tenant(self, name: str) -> Tenant:
        return self.tenants.get(name) or Tenant(name)


@dataclass(frozen=True)
class Placement:
    """Start `job_id` on these devices (one allocation per worker: a gang gets all of them)."""

    job_id: str
    pool: str
    allocations: tuple[Allocation, ...]


@dataclass(frozen=True)
class Preemption:
    """Ask `victim_id` to checkpoint and stop, to make room for `for_job_id`."""

    victim_id: str
    for_job_id: str


@dataclass(frozen=True)
class WaitingStatus:
    """Where a waiting job stands: its 1-based place in the scheduling order, and why it waits."""

    job_id: str
    queue_position: int
    pending_reason: str
