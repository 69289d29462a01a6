"""`schedule(snapshot, now)`: one scheduling cycle, a pure function of its inputs.

Order: priority class (urgent first), then the tenant's fair-share key in the job's pool (lower
first), then submit time. Within a class the streams (tenant, pool) are merged with a heap keyed
by the fair-share key, and a placement raises its tenant's key at once, so the free devices of
one cycle are spread over the tenants. A job that does not fit is passed over and the jobs behind
it are tried (backfill), unless it has waited `reserve_after_s`: then it holds the workers it
needs as they free up. A job of a class with a preemption grace that has waited that long and
still does not fit asks lower-class jobs to stop. The cycle stops once nothing waiting can fit
anywhere and no preemption is possible; the jobs not visited keep their order (tenant keys no
longer change), so their positions and reasons are still exact (see decision.py)."""

from __future__ import annotations

import heapq

from tass.core.scheduling.capacity import PoolCapacity
from tass.core.scheduling.cycle import CycleState, Outcome
from tass.core.scheduling.decision import Decision, TailBlock, Visit
from tass.core.scheduling.model import (
    Placement,
    Priority,
    SchedulerConfig,
    Snapshot,
    WaitingJob,
)
from tass.core.scheduling.preemption import preempt_for

DEFAULT_CONFIG = SchedulerConfig()

_HeapEntry = tuple[float, str, str, int, list[tuple[float, str]]]


def schedule(snapshot: Snapshot, now: float, config: SchedulerConfig = DEFAULT_CONFIG) -> Decision:
    """Decide what starts where, what is preempted, and where every other job waits."""
    state = CycleState(snapshot, now, config)
    placements: list[Placement] = []
    sequence: list[Visit | TailBlock] = []
    stopped = False
    for priority in sorted(Priority, reverse=True):
        heap: list[_HeapEntry] = [
            (state.key(tenant, pool), tenant, pool, 0, stream)
            for (_, tenant, pool), stream in snapshot.waiting.streams(priority)
        ]
        if not stopped:
            heapq.heapify(heap)
            stopped = _merge(state, priority, heap, placements, sequence)
        sequence.extend(_blocks(heap))
    return Decision(tuple(placements), tuple(state.preemptions), state, sequence)


def _merge(
    state: CycleState,
    priority: Priority,
    heap: list[_HeapEntry],
    placements: list[Placement],
    sequence: list[Visit | TailBlock],
) -> bool:
    """Visit one class's streams in fair-share order; True if the cycle stopped early (the
    heap then holds what is left). A stream is drained until one of its jobs is placed, since
    its key only changes on a placement (so this is exactly the heap's order); once its pool
    has no room and no preemption is possible, the rest of it waits as one block."""
    while heap:
        if not state.room and not state.may_preempt(priority):
            return True
        _, tenant, pool, index, stream = heapq.heappop(heap)
        while index < len(stream):
            if not state.has_room(pool) and not state.may_preempt(priority, pool):
                sequence.append(TailBlock(stream[index:]))
                index = len(stream)
                break
            skipped = _pass_over(state, stream, index)
            if skipped > index:
                sequence.append(TailBlock(stream[index:skipped]))
                index = skipped
                continue
            job = state.snapshot.waiting.get(stream[index][1])
            index += 1
            placement, outcome = _visit(state, job)
            if placement is not None:
                placements.append(placement)
                break
            assert outcome is not None
            sequence.append((job.job_id, outcome))
        if index < len(stream):
            heapq.heappush(heap, (state.key(tenant, pool), tenant, pool, index, stream))
    return False


def _pass_over(state: CycleState, stream: list[tuple[float, str]], index: int) -> int:
    """Past the run of jobs from `index` that plainly cannot start now (bigger than any free
    worker in their pool, neither preempting nor reserving): their reasons come from the
    state the cycle ends in. The fast path that keeps a cycle cheap at 100,000 waiting jobs."""
    waiting = state.snapshot.waiting
    config = state.config
    while index < len(stream):
        job = waiting.get(stream[index][1])
        resources = job.resources
        capacity = state.capacity.pools.get(resources.pool or "")
        need = resources.devices_per_worker
        if capacity is None or capacity.largest_free(resources.gpus > 0) >= need:
            return index
        waited = state.now - job.waiting_since
        if waited >= config.reserve_after_s and (
            len(state.reservations.get(capacity.name, ())) < config.reservations_per_pool
        ):
            return index
        grace = config.preemption_grace_s.get(job.priority)
        eligible = grace is not None and waited >= grace
        if eligible and state.may_preempt(job.priority, capacity.name, need, resources.workers):
            return index
        index += 1
    return index


def _blocks(heap: list[_HeapEntry]) -> list[TailBlock]:
    """The unvisited rest of a class, in the order the heap would have produced it (copied: a
    C-level slice, so the decision's order survives later changes to the queue)."""
    ordered = sorted(heap, key=lambda entry: entry[:3])
    return [TailBlock(stream[index:]) for _, _, _, index, stream in ordered]


def _visit(state: CycleState, job: WaitingJob) -> tuple[Placement | None, Outcome | None]:
    """Place the job if it fits now; otherwise preempt, reserve or pass over it."""
    resources = job.resources
    pools = state.capacity.candidates(resources.pool_key)
    allowed = [p for p in pools if not _over_quota(state, job, p.name)]
    if pools and not allowed:
        return None, _quota_outcome(state, job, pools[0].name)
    for pool in allowed:
        slots = pool.fit(resources)
        if slots is not None:
            allocations = pool.take(slots, resources.devices_per_worker, resources.gpus > 0)
            state.allocation[(job.tenant, pool.name)] += resources.total_devices
            state.placed[(job.priority, resources.pool_key)] += 1
            state.update_room()
            return Placement(job.job_id, pool.name, allocations), None
    if not state.could_ever_fit(resources):
        return None, Outcome("never", pool=resources.pool_key)
    return None, _wait(state, job, allowed)


def _wait(state: CycleState, job: WaitingJob, pools: list[PoolCapacity]) -> Outcome:
    waited = state.now - job.waiting_since
    grace = state.config.preemption_grace_s.get(job.priority)
    need = job.resources.devices_per_worker
    if grace is not None and waited >= grace:
        for pool in pools:
            if not state.may_preempt(job.priority, pool.name, need, job.resources.workers):
                continue
            asked = preempt_for(state, job, pool)
            if asked is not None:
                state.update_room()
                return Outcome("preempting", pool=pool.name, count=asked)
    if waited >= state.config.reserve_after_s:
        for pool in pools:
            reserved = _reserve(state, job, pool)
            if reserved:
                return Outcome("reserved", pool=pool.name, workers=reserved)
    pool_key = job.resources.pool_key
    gpu = job.resources.gpus > 0
    return Outcome(
        "capacity",
        pool=pool_key,
        largest=state.capacity.largest_free(pool_key, gpu),
        free_workers=sum(p.free_workers(job.resources) for p in pools)
        if job.resources.workers > 1
        else 0,
    )


def _reserve(state: CycleState, job: WaitingJob, pool: PoolCapacity) -> tuple[str, ...]:
    """Hold the workers closest to fitting the job (most free devices first)."""
    held = state.reservations.setdefault(pool.name, [])
    if len(held) >= state.config.reservations_per_pool:
        return ()
    gpu = job.resources.gpus > 0
    need = job.resources.devices_per_worker
    candidates = [s for s in pool.slots(gpu) if s.total >= need]
    if len(candidates) < job.resources.workers:
        return ()
    candidates.sort(key=lambda s: (-len(s.free), s.worker_id))
    workers = tuple(s.worker_id for s in candidates[: job.resources.workers])
    pool.hold(workers, gpu)
    held.append(job.job_id)
    state.update_room()
    return workers


def _over_quota(state: CycleState, job: WaitingJob, pool: str) -> bool:
    quota = state.snapshot.tenant(job.tenant).gpu_quota.get(pool)
    if quota is None or job.resources.gpus == 0:
        return False
    return state.allocation.get((job.tenant, pool), 0.0) + job.resources.total_gpus > quota


def _quota_outcome(state: CycleState, job: WaitingJob, pool: str) -> Outcome:
    held = state.allocation.get((job.tenant, pool), 0.0)
    quota = state.snapshot.tenant(job.tenant).gpu_quota.get(pool, 0)
    return Outcome("quota", pool=pool, largest=int(held), count=quota)
