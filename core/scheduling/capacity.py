"""Free capacity during one cycle: a working copy of each pool's free devices.

Placement is best fit (the worker with the fewest free devices that still fits, then the
lowest worker id), which keeps whole workers free for big and multi-worker jobs. A gang of N
takes N distinct workers or nothing. Draining workers are left out: they get no placement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tass.core.scheduling.model import ANY_POOL, Allocation, Resources, Worker


@dataclass
class _Slot:
    worker_id: str
    total: int
    free: list[int]


class PoolCapacity:
    """One pool's free devices (GPU workers and CPU workers kept apart)."""

    def __init__(self, name: str, workers: Iterable[Worker]) -> None:
        self.name = name
        self._slots: dict[bool, list[_Slot]] = {True: [], False: []}
        for worker in sorted(workers, key=lambda w: w.worker_id):
            if not worker.draining:
                slot = _Slot(worker.worker_id, worker.total, sorted(worker.free))
                self._slots[worker.gpu].append(slot)
        self._largest = {gpu: _largest(slots) for gpu, slots in self._slots.items()}
        self.held_largest = 0
        """The most free devices on one worker that a reservation or preemption holds."""
        self.biggest_worker = {
            gpu: max((s.total for s in slots), default=0) for gpu, slots in self._slots.items()
        }

    def largest_free(self, gpu: bool) -> int:
        return self._largest[gpu]

    def free_workers(self, resources: Resources) -> int:
        """How many workers could each take one member of this request now."""
        need = resources.devices_per_worker
        return sum(1 for s in self._slots[resources.gpus > 0] if len(s.free) >= need)

    def fit(self, resources: Resources) -> list[_Slot] | None:
        """The workers (best fit) that would take the request now, or None."""
        need = resources.devices_per_worker
        gpu = resources.gpus > 0
        if self._largest[gpu] < need:
            return None
        fitting = [s for s in self._slots[gpu] if len(s.free) >= need]
        if len(fitting) < resources.workers:
            return None
        fitting.sort(key=lambda s: (len(s.free), s.worker_id))
        return fitting[: resources.workers]

    def take(self, slots: Sequence[_Slot], per_worker: int, gpu: bool) -> tuple[Allocation, ...]:
        """Take `per_worker` devices (lowest indices) on each slot."""
        allocations = []
        for slot in slots:
            devices, slot.free = slot.free[:per_worker], slot.free[per_worker:]
            allocations.append(Allocation(slot.worker_id, tuple(devices)))
        self._largest[gpu] = _largest(self._slots[gpu])
        return tuple(allocations)

    def hold(self, worker_ids: Iterable[str], gpu: bool) -> None:
        """Hold every free device of these workers (a reservation): nothing else lands there."""
        held = set(worker_ids)
        for slot in self._slots[gpu]:
            if slot.worker_id in held:
                self.held_largest = max(self.held_largest, len(slot.free))
                slot.free = []
        self._largest[gpu] = _largest(self._slots[gpu])

    def slots(self, gpu: bool) -> list[_Slot]:
        return self._slots[gpu]


class ClusterCapacity:
    """Every pool's working copy, and placement for jobs that asked for any pool."""

    def __init__(self, workers: Iterable[Worker]) -> None:
        by_pool: dict[str, list[Worker]] = {}
        for worker in workers:
            by_pool.setdefault(worker.pool, []).append(worker)
        self.pools = {name: PoolCapacity(name, ws) for name, ws in sorted(by_pool.items())}

    def candidates(self, pool_key: str) -> list[PoolCapacity]:
        """The pools a request may use, in a fixed order."""
        if pool_key == ANY_POOL:
            return list(self.pools.values())
        pool = self.pools.get(pool_key)
        return [pool] if pool is not None else []

    def largest_free(self, pool_key: str, gpu: bool) -> int:
        return max((p.largest_free(gpu) for p in self.candidates(pool_key)), default=0)

    def could_ever_fit(self, resources: Resources) -> bool:
        """Whether some pool has enough live, non-draining workers big enough (empty)."""
        gpu = resources.gpus > 0
        need = resources.devices_per_worker
        return any(
            sum(1 for s in pool.slots(gpu) if s.total >= need) >= resources.workers
            for pool in self.candidates(resources.pool_key)
        )


def _largest(slots: Sequence[_Slot]) -> int:
    return max((len(s.free) for s in slots), default=0)


def request_fits(workers: Sequence[Worker], resources: Resources) -> bool:
    """Whether the request could run on the live workers at all, once they are idle: the
    API's check before it accepts a job (a request no worker can ever take is a 422, not an
    eternal wait). Draining workers do not count."""
    return ClusterCapacity(workers).could_ever_fit(resources)
