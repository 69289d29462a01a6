"""A cycle's answer: placements and preemptions at once, and each waiting job's place and
reason on request (computed lazily: the loop acts on placements within milliseconds, the API
reads positions and reasons for the jobs it shows).

The decision reads the snapshot's queue when positions are asked for: ask before changing the
queue for the next cycle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from tass.core.scheduling.cycle import CycleState, Outcome
from tass.core.scheduling.model import (
    ANY_POOL,
    Placement,
    Preemption,
    Priority,
    Resources,
    WaitingJob,
    WaitingStatus,
)


@dataclass(frozen=True)
class TailBlock:
    """Jobs the cycle did not reach, in order."""

    entries: list[tuple[float, str]]


Visit = tuple[str, Outcome]
"""A job the cycle examined and could not place, with why."""


class Decision:
    """Placements and preemptions, and the waiting jobs' positions and reasons."""

    def __init__(
        self,
        placements: tuple[Placement, ...],
        preemptions: tuple[Preemption, ...],
        state: CycleState,
        sequence: list[Visit | TailBlock],
    ) -> None:
        self.placements = placements
        self.preemptions = preemptions
        self._state = state
        self._sequence = sequence
        self._unvisited_reasons: dict[tuple[str, Priority, Resources], str] = {}

    @property
    def visited(self) -> int:
        """How many waiting jobs the cycle examined (the rest kept their order untouched)."""
        return sum(1 for item in self._sequence if not isinstance(item, TailBlock))

    @cached_property
    def _order(self) -> list[str]:
        order: list[str] = []
        for item in self._sequence:
            if isinstance(item, TailBlock):
                order.extend(job_id for _, job_id in item.entries)
            else:
                order.append(item[0])
        return order

    @property
    def waiting_count(self) -> int:
        """How many jobs are left waiting after this cycle."""
        return len(self._order)

    def waiting_ids(self, offset: int = 0) -> list[str]:
        """The ids of the waiting jobs from position `offset + 1` on, in scheduling order (no
        reasons: cheap however deep the queue)."""
        return self._order[offset:]

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {job_id: position for position, job_id in enumerate(self._order, start=1)}

    @cached_property
    def _outcomes(self) -> dict[str, Outcome]:
        return dict(item for item in self._sequence if not isinstance(item, TailBlock))

    def waiting(self, offset: int = 0, limit: int | None = None) -> list[WaitingStatus]:
        """Waiting jobs in scheduling order, with positions and reasons (a page of them)."""
        end = None if limit is None else offset + limit
        return [
            self._status(job_id, offset + i + 1) for i, job_id in enumerate(self._order[offset:end])
        ]

    def status(self, job_id: str) -> WaitingStatus | None:
        """One waiting job's position and reason (None: it is not waiting any more)."""
        position = self._positions.get(job_id)
        return None if position is None else self._status(job_id, position)

    def _status(self, job_id: str, position: int) -> WaitingStatus:
        job = self._state.snapshot.waiting.get(job_id)
        outcome = self._outcomes.get(job_id)
        if outcome is not None:
            return WaitingStatus(job_id, position, explain(self._state, job, outcome))
        # A job the cycle did not visit: its reason depends only on its tenant, class and
        # request, read against the state the cycle ended in (one answer per such group).
        group = (job.tenant, job.priority, job.resources)
        reason = self._unvisited_reasons.get(group)
        if reason is None:
            reason = self._unvisited_reasons[group] = explain(self._state, job, None)
        return WaitingStatus(job_id, position, reason)


def explain(state: CycleState, job: WaitingJob, outcome: Outcome | None) -> str:
    """The plain-words reason a job waits (its outcome when the cycle visited it, else the
    state the cycle ended in)."""
    resources = job.resources
    pool = resources.pool_key
    where = "any pool" if pool == ANY_POOL else f"pool {pool}"
    if outcome is None and not state.capacity.could_ever_fit(resources):
        outcome = Outcome("never", pool=pool)
    quota = state.snapshot.tenant(job.tenant).gpu_quota.get(pool)
    if outcome is None and quota is not None and resources.gpus:
        held = state.allocation.get((job.tenant, pool), 0.0)
        if held + resources.total_gpus > quota:
            outcome = Outcome("quota", pool=pool, largest=int(held), count=quota)
    if outcome is None:
        gpu = resources.gpus > 0
        candidates = state.capacity.candidates(pool)
        outcome = Outcome(
            "capacity",
            pool=pool,
            largest=state.capacity.largest_free(pool, gpu),
            free_workers=sum(p.free_workers(resources) for p in candidates),
        )
    if outcome.kind == "never":
        return f"no live worker in {where} can take {_request(job)}"
    if outcome.kind == "quota":
        return (
            f"tenant at its GPU quota in pool {outcome.pool} "
            f"({outcome.largest} of {outcome.count} GPUs)"
        )
    if outcome.kind == "preempting":
        if outcome.count == 0:
            return f"waiting for preempted jobs in pool {outcome.pool} to checkpoint and stop"
        return (
            f"preempting {outcome.count} lower-priority job{_s(outcome.count)} "
            f"in pool {outcome.pool} to make room"
        )
    if outcome.kind == "reserved":
        return (
            f"holding {', '.join(outcome.workers)} in pool {outcome.pool} until "
            f"{_request(job)} free (waited past the {state.config.reserve_after_s:g} s bound)"
        )
    return _capacity_reason(state, job, outcome, where)


def _capacity_reason(state: CycleState, job: WaitingJob, outcome: Outcome, where: str) -> str:
    resources = job.resources
    pool = resources.pool_key
    need = resources.devices_per_worker
    if resources.workers > 1 and outcome.free_workers < resources.workers:
        return (
            f"needs {resources.workers} workers, {outcome.free_workers} free "
            f"(each with {resources.unit(need)})"
        )
    higher = _higher_waiting(state, job.priority, pool)
    if higher:
        return f"behind {higher} job{_s(higher)} of higher priority"
    held = state.allocation.get((job.tenant, pool), 0.0)
    share = state.fair_share(job.tenant, pool) if pool != ANY_POOL else 0.0
    if share and held > share + 1e-9:
        return f"tenant over its fair share ({held:.1f} of {share:.1f} GPUs)"
    reserved = state.reservations.get(pool)
    pools = state.capacity.candidates(pool)
    if reserved and outcome.largest < need <= max(p.held_largest for p in pools):
        return f"free capacity in {where} is held for job {reserved[0]}, which waited longest"
    if outcome.largest < need:
        word = "GPU" if resources.gpus > 0 else "slot"
        return f"no worker in {where} has {need} free {word}{_s(need)} (largest: {outcome.largest})"
    return "waiting for the next scheduling cycle"


def _higher_waiting(state: CycleState, priority: Priority, pool: str) -> int:
    queue = state.snapshot.waiting
    return sum(
        queue.count(higher, pool) - state.placed[(higher, pool)]
        for higher in Priority
        if higher > priority
    )


def _request(job: WaitingJob) -> str:
    resources = job.resources
    text = resources.unit(resources.devices_per_worker)
    return text if resources.workers == 1 else f"{resources.workers} workers x {text}"


def _s(count: int | float) -> str:
    return "" if count == 1 else "s"


__all__: Sequence[str] = ("Decision", "TailBlock", "Visit", "explain")
