"""Small builders for scheduling scenarios: workers, jobs, running jobs, snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tass.core.scheduling import (
    Allocation,
    Decision,
    Priority,
    Resources,
    RunningJob,
    Snapshot,
    Tenant,
    WaitingJob,
    WaitingQueue,
    Worker,
    schedule,
)

LOW, NORMAL, HIGH, URGENT = Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT


def worker(
    name: str, size: int = 4, busy: Iterable[int] = (), pool: str = "a100", **kw: bool
) -> Worker:
    taken = set(busy)
    free = tuple(d for d in range(size) if d not in taken)
    return Worker(name, pool, size, free, **kw)


def job(
    job_id: str,
    tenant: str = "A",
    priority: Priority = NORMAL,
    gpus: int = 1,
    workers: int = 1,
    pool: str | None = "a100",
    at: float = 0.0,
    since: float | None = None,
) -> WaitingJob:
    return WaitingJob(
        job_id, tenant, priority, Resources(gpus, workers, pool), at, at if since is None else since
    )


def running(
    job_id: str,
    worker_id: str,
    devices: Sequence[int],
    tenant: str = "A",
    priority: Priority = NORMAL,
    pool: str = "a100",
    started: float = 0.0,
    stopping: bool = False,
) -> RunningJob:
    return RunningJob(
        job_id,
        tenant,
        priority,
        Resources(len(devices), 1, pool),
        pool,
        (Allocation(worker_id, tuple(devices)),),
        started,
        stopping,
    )


def snapshot(
    workers: Sequence[Worker],
    waiting: Iterable[WaitingJob],
    running_jobs: Sequence[RunningJob] = (),
    tenants: Iterable[Tenant] = (),
    usage: dict[tuple[str, str], float] | None = None,
) -> Snapshot:
    return Snapshot(
        workers,
        WaitingQueue(waiting),
        running_jobs,
        {t.name: t for t in tenants},
        usage or {},
    )


def run(snap: Snapshot, now: float = 1000.0, **config: object) -> Decision:
    from tass.core.scheduling import SchedulerConfig

    return schedule(snap, now, SchedulerConfig(**config))  # type: ignore[arg-type]  # test kwargs


def placed(decision: Decision) -> list[str]:
    return [p.job_id for p in decision.placements]


def reason(decision: Decision, job_id: str) -> str:
    status = decision.status(job_id)
    assert status is not None, f"{job_id} is not waiting"
    return status.pending_reason
