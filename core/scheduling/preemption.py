"""Choosing preemption victims for a job that cannot be placed.

Only a higher class preempts, and only once the job has waited its class's grace without fitting
in free capacity. Victims: the lowest class first, then the tenant furthest over its fair share,
then the job that started last (it loses the least work), then the job id. A worker is judged by
its worst victim, then by how many devices it would take away; jobs already asked to stop count
as free (their devices come back after their checkpoint), so a job is never preempted twice."""

from __future__ import annotations

from collections import defaultdict

from tass.core.scheduling.capacity import PoolCapacity
from tass.core.scheduling.cycle import CycleState
from tass.core.scheduling.model import Preemption, RunningJob, WaitingJob

_NO_VICTIM = (-1, 0.0, 0.0, "")


def _victim_rank(state: CycleState, job: RunningJob) -> tuple[int, float, float, str]:
    """The victim order, from the shares when first asked in the cycle (cached per job)."""
    ranks: dict[str, tuple[int, float, float, str]] = state.scratch.setdefault("ranks", {})
    rank = ranks.get(job.job_id)
    if rank is None:
        rank = ranks[job.job_id] = _rank(state, job)
    return rank


def _rank(state: CycleState, job: RunningJob) -> tuple[int, float, float, str]:
    share = state.fair_share(job.tenant, job.pool)
    held = state.allocation.get((job.tenant, job.pool), 0.0)
    over = held / share if share > 0 else float("inf")
    return (int(job.priority), -over, -job.started_at, job.job_id)


_Index = tuple[dict[str, list[RunningJob]], dict[str, int]]


def _on_workers(state: CycleState, pool: str) -> _Index:
    """Running jobs on each worker of the pool, and devices already being freed per worker
    (built once per pool and cycle)."""
    cache: dict[str, _Index] = state.scratch.setdefault("running_by_worker", {})
    if pool in cache:
        return cache[pool]
    victims: dict[str, list[RunningJob]] = defaultdict(list)
    stopping: dict[str, int] = defaultdict(int)
    for running in state.snapshot.running:
        if running.pool != pool:
            continue
        for allocation in running.allocations:
            if running.stopping:
                stopping[allocation.worker_id] += len(allocation.devices)
            else:
                victims[allocation.worker_id].append(running)
    cache[pool] = (victims, stopping)
    return cache[pool]


def _devices_on(job: RunningJob, worker_id: str) -> int:
    return sum(len(a.devices) for a in job.allocations if a.worker_id == worker_id)


def preempt_for(state: CycleState, job: WaitingJob, pool: PoolCapacity) -> int | None:
    """Pick victims in `pool` so that `job` fits once they stop; hold the chosen workers for it
    and record the preemptions. Returns how many jobs it asked to stop, or None if no set of
    lower-class victims makes room."""
    need = job.resources.devices_per_worker
    gpu = job.resources.gpus > 0
    if state.preemption_failed(pool.name, job.priority, job.resources.workers, need):
        return None
    victims_on, stopping = _on_workers(state, pool.name)
    claimed: set[str] = state.scratch.setdefault("claimed_workers", set())
    options = []
    for slot in pool.slots(gpu):
        if slot.total < need or slot.worker_id in claimed:
            continue
        available = len(slot.free) + stopping.get(slot.worker_id, 0)
        lower = [
            v
            for v in victims_on.get(slot.worker_id, [])
            if v.priority < job.priority and v.job_id not in state.chosen_victims
        ]
        ranked = sorted(lower, key=lambda v: _victim_rank(state, v))
        chosen: list[RunningJob] = []
        for victim in ranked:
            if available >= need:
                break
            chosen.append(victim)
            available += _devices_on(victim, slot.worker_id)
        if available < need:
            continue
        worst = _victim_rank(state, chosen[-1]) if chosen else _NO_VICTIM
        taken = sum(_devices_on(v, slot.worker_id) for v in chosen)
        options.append((worst, taken, slot.worker_id, chosen))
    if len(options) < job.resources.workers:
        failed = state.preempt_failed.setdefault((pool.name, job.priority), [])
        failed.append((job.resources.workers, need))
        return None
    options.sort(key=lambda option: option[:3])
    picked = options[: job.resources.workers]
    asked = 0
    for _, _, _, chosen in picked:
        for victim in chosen:
            if victim.job_id in state.chosen_victims:
                continue
            state.chosen_victims.add(victim.job_id)
            state.preemptible[(victim.pool, victim.priority)] -= 1
            state.preemptions.append(Preemption(victim.job_id, job.job_id))
            asked += 1
    held = [worker_id for _, _, worker_id, _ in picked]
    claimed.update(held)  # one preemptor per worker and cycle: stopping devices count once
    pool.hold(held, gpu)
    return asked
