"""The scheduler's database side: the lease that makes one scheduler active, the snapshot a cycle
reads (live workers and their free devices, the waiting queue, running jobs, tenants, usage), and
what a decision writes (placements that reserve devices, preemption requests, each waiting job's
place and reason). The policy itself is `core.scheduling` (pure); the loop that calls both and
hands placed jobs to their worker's queue is `worker.scheduler`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.contract.statuses import JobStatus, JobType
from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.models import Job, SchedulerLease, TenantSettings, TenantUsage, Worker
from tass.core.pagination import decode_queue_cursor, encode_queue_cursor
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
    accrue,
    check_request,
    decay_factor,
)
from tass.core.scheduling import Worker as PoolWorker
from tass.core.settings import Settings
from tass.core.workers import set_draining

LEASE_NAME = "scheduler"
HOLDING = [JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.CANCELLING.value]
"""Statuses in which a placed job holds its devices (queued: placed, not yet claimed)."""


# The lease


def hold_lease(session: Session, holder: str, seconds: float) -> bool:
    """Take or renew the scheduler lease for `seconds`; False while another holder's is live.
    Every node asks every cycle, so that answer is a read alone: only the holder, or a node
    finding the lease expired or missing, writes."""
    now = database_now(session)
    current = session.execute(
        select(SchedulerLease.holder, SchedulerLease.expires_at).where(
            SchedulerLease.name == LEASE_NAME
        )
    ).one_or_none()
    if current is not None and current.holder != holder and current.expires_at >= now:
        return False
    expires = now + timedelta(seconds=seconds)
    renewed = changed_rows(
        session,
        update(SchedulerLease)
        .where(
            SchedulerLease.name == LEASE_NAME,
            or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now),
        )
        .values(holder=holder, expires_at=expires),
    )
    if renewed:
        return True
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(SchedulerLease).values(name=LEASE_NAME, holder=holder, expires_at=expires)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    taken = select(SchedulerLease.holder).where(SchedulerLease.name == LEASE_NAME)
    return session.scalar(taken.execution_options(populate_existing=True)) == holder


def still_holding(session: Session, holder: str) -> bool:
    """Whether `holder` still holds a live lease, locking its row for this transaction on
    PostgreSQL: a would-be successor's takeover waits until this cycle's writes commit, so two
    schedulers never place onto the same free devices (SQLite serialises writers anyway)."""
    stmt = select(SchedulerLease.holder).where(
        SchedulerLease.name == LEASE_NAME,
        SchedulerLease.holder == holder,
        SchedulerLease.expires_at > database_now(session),
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalar(stmt) is not None


def release_lease(session: Session, holder: str) -> None:
    """Give the lease up (a clean stop): another scheduler takes over at its next cycle."""
    session.execute(
        delete(SchedulerLease).where(
            SchedulerLease.name == LEASE_NAME, SchedulerLease.holder == holder
        )
    )


def lease_holder(session: Session) -> str | None:
    """Who schedules now (None: nobody holds a live lease)."""
    row = session.get(SchedulerLease, LEASE_NAME)
    if row is None or row.expires_at < database_now(session):
        return None
    return row.holder


# Reading a snapshot


def resources_of(raw: dict[str, Any] | None) -> Resources:
    """A job's `resources` column as the policy's Resources (null: one CPU slot, any pool)."""
    raw = raw or {}
    return Resources(
        gpus=int(raw.get("gpus", 0)), workers=int(raw.get("workers", 1)), pool=raw.get("pool")
    )


def allocations(placement: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """(worker, device numbers) of each worker a placement reserves devices on."""
    return [(member["worker"], member["devices"]) for member in placement.get("allocations", [])]


@dataclass(frozen=True)
class PlacedJob:
    """A job placed on a worker that has not claimed it yet."""

    job_id: str
    job_type: str
    attempt: int
    placement: dict[str, Any]
    trace_context: dict[str, Any] | None = None

    @property
    def worker(self) -> str:
        return str(self.placement["worker"])

    @property
    def sent_at(self) -> datetime:
        return datetime.fromisoformat(self.placement["at"])


@dataclass(frozen=True)
class Cluster:
    """What one cycle read: the policy's snapshot plus what the loop needs to act on it:
    which workers are alive, the placed jobs not claimed yet, each waiting job's type and
    attempt and the place and reason it shows, and the devices each tenant holds per pool."""

    now: datetime
    snapshot: Snapshot
    alive: set[str]
    placed: list[PlacedJob]
    shown: dict[str, tuple[int | None, str | None]]
    types: dict[str, tuple[str, int, dict[str, Any] | None]]
    held: dict[tuple[str, str], int]


def any_queued(session: Session) -> bool:
    """Whether any job is queued (placed or not): an idle scheduler's only read."""
    found = session.scalar(select(Job.id).where(Job.status == JobStatus.QUEUED.value).limit(1))
    return found is not None


def alive_workers(session: Session, now: datetime, within: float) -> list[Worker]:
    cutoff = now - timedelta(seconds=within)
    return list(
        session.scalars(
            select(Worker).where(Worker.stopped_at.is_(None), Worker.last_seen_at > cutoff)
        )
    )


_CYCLE_COLUMNS = (
    Job.id,
    Job.type,
    Job.status,
    Job.tenant,
    Job.attempt,
    Job.priority,
    Job.resources,
    Job.placement,
    Job.created_at,
    Job.queued_at,
    Job.started_at,
    Job.queue_position,
    Job.pending_reason,
    Job.preempt_requested_at,
    Job.trace_context,
)
"""What a cycle reads of each job holding or waiting for devices (no ORM objects, no
transitions: the cycle runs several times a second)."""


def load_cluster(session: Session, settings: Settings) -> Cluster:
    """One consistent read of everything a cycle decides on."""
    now = database_now(session)
    rows = alive_workers(session, now, settings.heartbeat_timeout_seconds)
    used: dict[str, set[int]] = defaultdict(set)
    running: list[RunningJob] = []
    waiting: list[WaitingJob] = []
    held: dict[tuple[str, str], int] = defaultdict(int)
    placed: list[PlacedJob] = []
    shown: dict[str, tuple[int | None, str | None]] = {}
    types: dict[str, tuple[str, int, dict[str, Any] | None]] = {}
    for job in session.execute(select(*_CYCLE_COLUMNS).where(Job.status.in_(HOLDING))):
        if job.placement is None:
            if job.status == JobStatus.QUEUED.value:
                waiting.append(_waiting(job))
                shown[job.id] = (job.queue_position, job.pending_reason)
                types[job.id] = (job.type, job.attempt, job.trace_context)
            continue
        for worker, devices in allocations(job.placement):
            used[worker].update(devices)
            held[(job.tenant, job.placement["pool"])] += len(devices)
        if job.status == JobStatus.QUEUED.value:
            placed.append(
                PlacedJob(job.id, job.type, job.attempt, job.placement, job.trace_context)
            )
        if job.type == JobType.TRAIN.value:  # only train jobs checkpoint: the possible victims
            running.append(_running(job, now))
    workers = tuple(
        PoolWorker(
            worker_id=row.name,
            pool=row.pool,
            total=row.slots,
            free=free_devices(row.slots, used[row.name], row.busy),
            gpu=row.device == "gpu",
            draining=row.draining,
        )
        for row in rows
    )
    tenants = {
        row.name: Tenant(row.name, row.weight, Priority(row.max_priority), row.gpu_quota or {})
        for row in session.scalars(select(TenantSettings))
    }
    snapshot = Snapshot(
        workers=workers,
        waiting=WaitingQueue(waiting),
        running=tuple(running),
        tenants=tenants,
        usage=_decayed_usage(session, now, settings.scheduler_half_life_seconds),
    )
    alive = {row.name for row in rows}
    return Cluster(now, snapshot, alive, placed, shown, types, dict(held))


def free_devices(slots: int, reserved: set[int], busy: int) -> tuple[int, ...]:
    """The devices of a worker no placement reserves, less those its busy job processes hold
    beyond the reserved ones (a hung process of a requeued job keeps its device until it
    exits: the job's next attempt goes elsewhere)."""
    free = [i for i in range(slots) if i not in reserved]
    return tuple(free[max(busy - len(reserved), 0) :])


def _waiting(job: Any) -> WaitingJob:
    """A waiting job from its row (`_CYCLE_COLUMNS`)."""
    return WaitingJob(
        job_id=job.id,
        tenant=job.tenant,
        priority=Priority(job.priority),
        resources=resources_of(job.resources),
        submitted_at=job.created_at.timestamp(),
        waiting_since=(job.queued_at or job.created_at).timestamp(),
    )


def _running(job: Any, now: datetime) -> RunningJob:
    """A placed job from its row (`_CYCLE_COLUMNS`): a possible victim, and its tenant's
    allocation; one placed but not started yet, or cancelling, is already `stopping`."""
    return RunningJob(
        job_id=job.id,
        tenant=job.tenant,
        priority=Priority(job.priority),
        resources=resources_of(job.resources),
        pool=job.placement["pool"],
        allocations=tuple(
            Allocation(worker, tuple(devices)) for worker, devices in allocations(job.placement)
        ),
        started_at=(job.started_at or now).timestamp(),
        stopping=job.preempt_requested_at is not None or job.status != JobStatus.RUNNING.value,
    )


def _decayed_usage(
    session: Session, now: datetime, half_life: float
) -> dict[tuple[str, str], float]:
    return {
        (row.tenant, row.pool): row.usage
        * decay_factor((now - row.updated_at).total_seconds(), half_life)
        for row in session.scalars(select(TenantUsage))
    }


# Checking a request at submit


def tenant_settings(session: Session, tenant: str) -> Tenant:
    row = session.get(TenantSettings, tenant)
    if row is None:
        return Tenant(tenant)
    return Tenant(row.name, row.weight, Priority(row.max_priority), row.gpu_quota or {})


def check_submission(
    session: Session, settings: Settings, tenant: str, resources: Resources, priority: Priority
) -> tuple[str, str] | None:
    """(field, message) when the request may never run or is not allowed, else None. A pool
    with no live worker at all is not refused (its workers may be starting: a spot pool
    scaled to zero); one whose workers are all too small is."""
    now = database_now(session)
    rows = alive_workers(session, now, settings.heartbeat_timeout_seconds)
    pool_rows = [r for r in rows if resources.pool is None or r.pool == resources.pool]
    workers = [
        PoolWorker(r.name, r.pool, r.slots, tuple(range(r.slots)), r.device == "gpu")
        for r in pool_rows
    ]
    checked = check_request(workers, tenant_settings(session, tenant), resources, priority)
    if checked is None or checked[0] != "resources":
        return checked
    if not pool_rows:
        return None
    if resources.gpus == 0 and all(w.gpu for w in workers):
        return checked[
            0
        ], f"{checked[1]} (its live workers are GPU workers: ask for resources.gpus)"
    return checked


# Writing a decision


@dataclass(frozen=True)
class Dispatch:
    """A task to send once the transaction that placed the job has committed."""

    job_id: str
    job_type: str
    attempt: int
    worker: str
    trace_context: dict[str, Any] | None = None
    """The submit request's trace, which the task's publication continues."""


def deep_reason(shown: int) -> str:
    """The reason shown for a job behind the first `shown` waiting jobs."""
    return (
        f"more than {shown:,} jobs wait ahead of it; its place and reason show once it is "
        f"among the first {shown:,}"
    )


def apply_decision(
    session: Session, cluster: Cluster, decision: Decision, shown: int
) -> list[Dispatch]:
    """Reserve each placement's devices (a conditional UPDATE: a job cancelled meanwhile is
    skipped), ask each victim to stop, and store the place and reason of each of the first
    `shown` waiting jobs (TASS_SCHEDULER_POSITIONS_SHOWN) where they changed (the rest: no
    place, `deep_reason`). Returns the tasks to send after commit."""
    dispatches = []
    stamp = cluster.now.isoformat()
    for placement in decision.placements:
        value = {
            "pool": placement.pool,
            "worker": placement.allocations[0].worker_id,
            "allocations": [
                {"worker": a.worker_id, "devices": list(a.devices)} for a in placement.allocations
            ],
            "at": stamp,
        }
        won = changed_rows(
            session,
            update(Job)
            .where(
                Job.id == placement.job_id,
                Job.status == JobStatus.QUEUED.value,
                Job.placement.is_(None),
            )
            .values(placement=value, queue_position=None, pending_reason=None),
        )
        if won:
            job_type, attempt, trace_context = cluster.types[placement.job_id]
            worker = placement.allocations[0].worker_id
            dispatches.append(Dispatch(placement.job_id, job_type, attempt, worker, trace_context))
    for preemption in decision.preemptions:
        request_preemption(session, preemption.victim_id, cluster.now)
    _store_positions(session, cluster, decision, shown)
    return dispatches


def request_preemption(session: Session, job_id: str, now: datetime) -> None:
    """Ask a running job to checkpoint and stop (its worker's lease sees it within a
    heartbeat); a job placed but not started yet simply loses its placement."""
    session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.RUNNING.value,
            Job.preempt_requested_at.is_(None),
        )
        .values(preempt_requested_at=now)
    )
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
        .values(placement=None)
    )


def _store_positions(session: Session, cluster: Cluster, decision: Decision, shown: int) -> None:
    """Write each waiting job's place and reason where they changed since the cycle read them,
    in one statement. Only the first `shown` jobs get their exact place and reason: a placement
    near the head of a deep queue moves every job behind it, and rewriting 100,000 rows a cycle
    would make the loop as slow as the queue is long (as Kueue's visibility API, which ranks its
    first 4,000 pending workloads). Jobs further back show no place and `deep_reason`, written
    once when they get there."""
    placed = {p.job_id for p in decision.placements}
    changed: list[tuple[str, int | None, str]] = [
        (status.job_id, status.queue_position, status.pending_reason)
        for status in decision.waiting(limit=shown)
        if status.job_id not in placed
        and cluster.shown.get(status.job_id) != (status.queue_position, status.pending_reason)
    ]
    deep = (None, deep_reason(shown))
    changed += [
        (job_id, *deep)
        for job_id in decision.waiting_ids(shown)
        if job_id not in placed and cluster.shown.get(job_id) != deep
    ]
    if changed:
        store_positions(session, changed)


_POSITIONS_FROM_ARRAYS = text(
    "UPDATE jobs SET queue_position = shown.position, pending_reason = shown.reason "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:positions AS integer[]), "
    "CAST(:reasons AS text[])) AS shown(id, position, reason) "
    "WHERE jobs.id = shown.id AND jobs.status = :queued"
)
"""PostgreSQL: every changed row in one UPDATE joined to three arrays (one round trip)."""


def store_positions(session: Session, rows: list[tuple[str, int | None, str]]) -> None:
    """Set (job id, queue position, pending reason) on each of these jobs that is still
    queued: one statement on PostgreSQL, one prepared statement run for every row on SQLite."""
    queued = JobStatus.QUEUED.value
    if session.get_bind().dialect.name == "postgresql":
        ids, positions, reasons = (list(column) for column in zip(*rows, strict=True))
        params = {"ids": ids, "positions": positions, "reasons": reasons, "queued": queued}
        session.execute(_POSITIONS_FROM_ARRAYS, params)
        return
    jobs = cast(Table, Job.__table__)
    stmt = (
        update(jobs)
        .where(jobs.c.id == bindparam("job_id"), jobs.c.status == queued)
        .values(queue_position=bindparam("position"), pending_reason=bindparam("reason"))
    )
    values = [{"job_id": i, "position": p, "reason": r} for i, p, r in rows]
    session.connection().execute(stmt, values)


def accrue_usage(
    session: Session, held: dict[tuple[str, str], int], now: datetime, half_life: float
) -> None:
    """Bring every tenant's decayed usage up to `now`, adding what it holds per pool."""
    rows = {(r.tenant, r.pool): r for r in session.scalars(select(TenantUsage))}
    for key in set(rows) | set(held):
        row = rows.get(key)
        if row is None:
            session.add(TenantUsage(tenant=key[0], pool=key[1], usage=0.0, updated_at=now))
            continue
        elapsed = (now - row.updated_at).total_seconds()
        row.usage = accrue(row.usage, held.get(key, 0), elapsed, half_life)
        row.updated_at = now


# Placements that went astray


def unplace_lost(session: Session, cluster: Cluster) -> int:
    """Placed jobs whose worker is gone (stopped or silent) wait again: their devices return."""
    lost = [p.job_id for p in cluster.placed if p.worker not in cluster.alive]
    if not lost:
        return 0
    return changed_rows(
        session,
        update(Job)
        .where(Job.id.in_(lost), Job.status == JobStatus.QUEUED.value)
        .values(placement=None),
    )


def resend_due(session: Session, cluster: Cluster, after: float) -> list[Dispatch]:
    """Placed jobs a live worker has not claimed for `after` seconds (a lost message): sent
    again, their placement's time renewed so the next send waits as long."""
    due = [
        p
        for p in cluster.placed
        if p.worker in cluster.alive and (cluster.now - p.sent_at).total_seconds() > after
    ]
    for placed in due:
        session.execute(
            update(Job)
            .where(Job.id == placed.job_id, Job.status == JobStatus.QUEUED.value)
            .values(placement={**placed.placement, "at": cluster.now.isoformat()})
        )
    return [Dispatch(p.job_id, p.job_type, p.attempt, p.worker, p.trace_context) for p in due]


# What the API shows: the waiting queue, each pool's capacity and use, tenants' settings

UNPLACED_LAST = 2**31 - 1
"""The sort key of a waiting job the scheduler has not given a position yet (after all others)."""


def waiting_jobs(
    session: Session, *, scope: str | None, limit: int, cursor: str | None = None
) -> tuple[list[Job], str | None]:
    """One page of the jobs waiting to be placed (queued, no placement) in scheduling order:
    by queue position, then submit time for those the scheduler has not ranked yet; `scope`:
    only this tenant's. With the next page's cursor (None on the last)."""
    order = func.coalesce(Job.queue_position, UNPLACED_LAST)
    stmt = select(Job).where(Job.status == JobStatus.QUEUED.value, Job.placement.is_(None))
    if scope is not None:
        stmt = stmt.where(Job.tenant == scope)
    if cursor:
        position, at, row_id = decode_queue_cursor(cursor)
        stmt = stmt.where(
            or_(
                order > position,
                and_(order == position, Job.created_at > at),
                and_(order == position, Job.created_at == at, Job.id > row_id),
            )
        )
    stmt = stmt.order_by(order, Job.created_at, Job.id).limit(limit + 1)
    rows = list(session.scalars(stmt))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    key = last.queue_position if last.queue_position is not None else UNPLACED_LAST
    return rows[:limit], encode_queue_cursor(key, last.created_at, last.id)


@dataclass(frozen=True)
class WorkerUse:
    """A live worker's devices and the jobs placed on them."""

    name: str
    device: str
    slots: int
    used: int
    draining: bool
    jobs: list[str]

    @property
    def free(self) -> int:
        return max(self.slots - self.used, 0)


@dataclass(frozen=True)
class PoolUse:
    """A pool's live workers and how many jobs wait for it (asking for it by name)."""

    name: str
    workers: list[WorkerUse]
    waiting: int

    @property
    def devices(self) -> int:
        return sum(w.slots for w in self.workers)

    @property
    def used(self) -> int:
        return sum(w.used for w in self.workers)

    @property
    def free(self) -> int:
        return sum(w.free for w in self.workers if not w.draining)


def pool_use(session: Session, settings: Settings) -> tuple[list[PoolUse], int]:
    """Every pool with a live worker or a job waiting for it, by name, and how many waiting
    jobs take any pool. Devices in use are those reserved by placements (placed, running or
    stopping jobs); a draining worker's free devices are not counted free."""
    now = database_now(session)
    used: dict[str, set[int]] = defaultdict(set)
    jobs: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str | None, int] = defaultdict(int)
    rows = session.execute(
        select(Job.id, Job.status, Job.placement, Job.resources).where(Job.status.in_(HOLDING))
    )
    for job_id, status, placement, resources in rows:
        if placement is None:
            if status == JobStatus.QUEUED.value:
                waiting[(resources or {}).get("pool")] += 1
            continue
        for worker, devices in allocations(placement):
            used[worker].update(devices)
            jobs[worker].append(job_id)
    by_pool: dict[str, list[WorkerUse]] = defaultdict(list)
    for row in alive_workers(session, now, settings.heartbeat_timeout_seconds):
        by_pool[row.pool].append(
            WorkerUse(
                row.name,
                row.device,
                row.slots,
                row.slots - len(free_devices(row.slots, used[row.name], row.busy)),
                row.draining,
                jobs[row.name],
            )
        )
    names = sorted({*by_pool, *(pool for pool in waiting if pool is not None)})
    pools = [
        PoolUse(name, sorted(by_pool[name], key=lambda w: w.name), waiting.get(name, 0))
        for name in names
    ]
    return pools, waiting.get(None, 0)


def save_tenant(
    session: Session,
    tenant: str,
    *,
    weight: float | None = None,
    max_priority: Priority | None = None,
    gpu_quota: dict[str, int] | None = None,
) -> Tenant:
    """Create or change a tenant's scheduling settings; what is not given keeps its value
    (the default for a new tenant). The scheduler reads them at its next cycle."""
    row = session.get(TenantSettings, tenant)
    if row is None:
        defaults = Tenant(tenant)
        row = TenantSettings(
            name=tenant,
            weight=defaults.weight,
            max_priority=int(defaults.max_priority),
            gpu_quota=dict(defaults.gpu_quota),
        )
        session.add(row)
    if weight is not None:
        row.weight = weight
    if max_priority is not None:
        row.max_priority = int(max_priority)
    if gpu_quota is not None:
        row.gpu_quota = dict(gpu_quota)
    row.updated_at = database_now(session)
    session.flush()
    return tenant_settings(session, tenant)


def drain_worker(session: Session, name: str, draining: bool, *, preempt: bool) -> list[str] | None:
    """Set a worker's drain flag (None: no such worker). With `preempt`, its running train
    jobs are asked to checkpoint and stop, and jobs placed on it that have not started lose
    their placement: all of them wait again and are placed elsewhere. Returns their ids."""
    if not set_draining(session, name, draining):
        return None
    if not preempt:
        return []
    now = database_now(session)
    moved = []
    for job in session.scalars(select(Job).where(Job.status.in_(HOLDING))):
        on_worker = any(m["worker"] == name for m in (job.placement or {}).get("allocations", []))
        train_running = job.status == JobStatus.RUNNING.value and job.type == JobType.TRAIN.value
        if on_worker and (train_running or job.status == JobStatus.QUEUED.value):
            request_preemption(session, job.id, now)
            moved.append(job.id)
    return moved
