"""The state one scheduling cycle works on: capacity left, allocations, fair-share keys."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tass.core.scheduling.capacity import ClusterCapacity
from tass.core.scheduling.model import (
    ANY_POOL,
    Preemption,
    Priority,
    Resources,
    SchedulerConfig,
    Snapshot,
)
from tass.core.scheduling.queue import WaitingQueue


@dataclass
class Outcome:
    """Why a visited job was not placed, with the figures its reason quotes."""

    kind: str  # never | quota | capacity | reserved | preempting
    pool: str = ""
    largest: int = 0
    free_workers: int = 0
    count: int = 0
    workers: tuple[str, ...] = ()


@dataclass
class CycleState:
    """Mutable working state of one `schedule()` call; the snapshot itself is never changed."""

    snapshot: Snapshot
    now: float
    config: SchedulerConfig
    capacity: ClusterCapacity = field(init=False)
    allocation: dict[tuple[str, str], float] = field(init=False)
    placed: Counter[tuple[Priority, str]] = field(default_factory=Counter)
    reservations: dict[str, list[str]] = field(default_factory=dict)
    preemptions: list[Preemption] = field(default_factory=list)
    chosen_victims: set[str] = field(default_factory=set)
    room: bool = True
    pool_room: dict[str, bool] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.capacity = ClusterCapacity(self.snapshot.workers)
        self.allocation = defaultdict(float)
        for job in self.snapshot.running:
            self.allocation[(job.tenant, job.pool)] += job.resources.total_devices
        self._weights: dict[str, float] = {}
        self.preemptible: Counter[tuple[str, Priority]] = Counter(
            (job.pool, job.priority) for job in self.snapshot.running if not job.stopping
        )
        self.preempt_failed: dict[tuple[str, Priority], list[tuple[int, int]]] = {}
        """Per (pool, class): the (workers, devices per worker) requests whose preemption
        failed; one as big or bigger in both fails too (victims only get fewer in a cycle)."""
        self._class_may_preempt = {p: self._past_grace(p) for p in Priority}
        self.update_room()

    def weight(self, tenant: str) -> float:
        weight = self._weights.get(tenant)
        if weight is None:
            weight = max(self.snapshot.tenant(tenant).weight, 1e-9)
            self._weights[tenant] = weight
        return weight

    def key(self, tenant: str, pool: str) -> float:
        """The fair-share key (lower goes first): decayed usage plus the current allocation
        projected over the decay's mean life, per unit of weight. The allocation term makes a
        placement count at once, so one cycle does not hand every free GPU to one tenant."""
        usage = self.snapshot.usage
        if pool == ANY_POOL:
            pools = self.capacity.pools
            used = sum(usage.get((tenant, p), 0.0) for p in pools)
            held = sum(self.allocation.get((tenant, p), 0.0) for p in pools)
        else:
            used = usage.get((tenant, pool), 0.0)
            held = self.allocation.get((tenant, pool), 0.0)
        return (used + held * self.config.mean_life_s) / self.weight(tenant)

    def update_room(self) -> None:
        """Which pools could still take one of their waiting jobs. Capacity only shrinks within
        a cycle, so a pool without room keeps none; with no room anywhere the cycle may stop."""
        queue = self.snapshot.waiting
        rooms: dict[str, bool] = {}
        for name, pool in self.capacity.pools.items():
            rooms[name] = any(
                _at_least(pool.largest_free(gpu), queue.smallest_demand(name, gpu))
                for gpu in (True, False)
            )
        rooms[ANY_POOL] = any(
            _at_least(
                self.capacity.largest_free(ANY_POOL, gpu), queue.smallest_demand(ANY_POOL, gpu)
            )
            for gpu in (True, False)
        )
        self.pool_room = rooms
        self.room = any(rooms.values())

    def could_ever_fit(self, resources: Resources) -> bool:
        """`ClusterCapacity.could_ever_fit`, remembered per request shape for the cycle."""
        cache: dict[Resources, bool] = self.scratch.setdefault("could_ever_fit", {})
        shape = Resources(resources.gpus, resources.workers, resources.pool)
        if shape not in cache:
            cache[shape] = self.capacity.could_ever_fit(resources)
        return cache[shape]

    def has_room(self, pool: str) -> bool:
        """Whether some job waiting for this pool (ANY_POOL: for any pool) could fit now."""
        return self.pool_room.get(pool, False)

    def _past_grace(self, priority: Priority) -> bool:
        grace = self.config.preemption_grace_s.get(priority)
        oldest = self.snapshot.waiting.longest_wait_since(priority)
        return grace is not None and oldest is not None and self.now - oldest >= grace

    def preemption_failed(self, pool: str, priority: Priority, workers: int, need: int) -> bool:
        """Whether a request no bigger than this one already failed to preempt here."""
        return any(
            w <= workers and n <= need for w, n in self.preempt_failed.get((pool, priority), ())
        )

    def may_preempt(
        self, priority: Priority, pool: str | None = None, need: int = 0, workers: int = 1
    ) -> bool:
        """Whether a job of this class (in `pool`, needing `need` devices per worker; None and 0:
        any) could still preempt: some job of the class is past its grace, a lower class runs
        there, and no smaller preemption of the class failed there this cycle."""
        if not self._class_may_preempt[priority]:
            return False
        pools = self.capacity.pools if pool is None or pool == ANY_POOL else (pool,)
        for name in pools:
            smallest = need or _smallest(self.snapshot.waiting, name, ANY_POOL)
            if self.preemption_failed(name, priority, workers, smallest):
                continue
            if any(self.preemptible[(name, lower)] > 0 for lower in Priority if lower < priority):
                return True
        return False

    def fair_share(self, tenant: str, pool: str) -> float:
        """The tenant's weighted share of the pool's devices among the tenants using it or
        waiting for it."""
        if pool not in self.capacity.pools:
            return 0.0
        shares = self._pool_weights()
        total = shares.get(pool, 0.0)
        if total <= 0:
            return 0.0
        capacity = self._pool_size(pool)
        return capacity * self.weight(tenant) / total

    def _pool_size(self, pool: str) -> int:
        sizes: dict[str, int] = self.scratch.setdefault("pool_size", {})
        if pool not in sizes:
            cap = self.capacity.pools[pool]
            sizes[pool] = sum(s.total for gpu in (True, False) for s in cap.slots(gpu))
        return sizes[pool]

    def _pool_weights(self) -> dict[str, float]:
        cached: dict[str, float] | None = self.scratch.get("weights_by_pool")
        if cached is not None:
            return cached
        tenants: dict[str, set[str]] = defaultdict(set)
        for tenant, pool in self.allocation:
            tenants[pool].add(tenant)
        for _, tenant, pool in self.snapshot.waiting.stream_keys():
            tenants[pool].add(tenant)
        result = {pool: sum(self.weight(t) for t in sorted(ts)) for pool, ts in tenants.items()}
        self.scratch["weights_by_pool"] = result
        return result


def _at_least(free: int, need: int | None) -> bool:
    return need is not None and free >= need


def _smallest(queue: WaitingQueue, pool: str, any_pool: str) -> int:
    sizes = [
        size
        for name in (pool, any_pool)
        for gpu in (True, False)
        if (size := queue.smallest_demand(name, gpu)) is not None
    ]
    return min(sizes, default=0)
