"""The scheduling policy of a shared GPU pool, as pure, deterministic functions.

No database, no broker, no clock: the scheduler loop (and benchmarks/scheduler_sim.py) builds a
`Snapshot` and calls `schedule(snapshot, now)`, which returns a `Decision` (placements,
preemptions, and each waiting job's queue position and pending reason).

Order: priority class (urgent, high, normal, low), then the tenant's fair-share key in the job's
pool (lower first), then submit time.

Fair share: Slurm-style, on decayed usage. The key is (decayed GPU-seconds in the pool + current
GPUs x the decay's mean life) / weight. We chose Slurm's decayed usage over Dominant Resource
Fairness because (1) the contended resource is one kind per pool (GPUs, or CPU slots on CPU
pools), where DRF collapses to plain GPU share and its multi-resource strength buys nothing;
(2) training jobs run for hours and cannot be resized, so an instantaneous share (DRF) is
unfair over time: a tenant that held the pool all night should yield in the morning, which only
a usage history captures; (3) teams know Slurm's fair-share and its half-life. The current
allocation term keeps the DRF virtue that matters here: a placement counts at once, so one cycle
does not give all free GPUs to the tenant with the least history.
"""

from tass.core.scheduling.capacity import request_fits
from tass.core.scheduling.decision import Decision
from tass.core.scheduling.model import (
    ANY_POOL,
    Allocation,
    Placement,
    Preemption,
    Priority,
    Resources,
    RunningJob,
    SchedulerConfig,
    Snapshot,
    Tenant,
    WaitingJob,
    WaitingStatus,
    Worker,
)
from tass.core.scheduling.policy import DEFAULT_CONFIG, schedule
from tass.core.scheduling.queue import WaitingQueue
from tass.core.scheduling.usage import accrue, decay_factor
from tass.core.scheduling.validation import check_request

__all__ = [
    "ANY_POOL",
    "DEFAULT_CONFIG",
    "Allocation",
    "Decision",
    "Placement",
    "Preemption",
    "Priority",
    "Resources",
    "RunningJob",
    "SchedulerConfig",
    "Snapshot",
    "Tenant",
    "WaitingJob",
    "WaitingQueue",
    "WaitingStatus",
    "Worker",
    "accrue",
    "check_request",
    "decay_factor",
    "request_fits",
    "schedule",
]
