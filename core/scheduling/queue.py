"""The waiting queue, indexed so that a scheduling cycle never sorts it from scratch.

Jobs sit in streams, one per (priority class, tenant, pool), each kept in submit order; a cycle
merges the streams of a class with a heap over their tenants' fair-share keys (a few hundred
streams, whatever the queue's length). The index also keeps what lets a cycle stop early and
answer reasons in constant time: per pool, how many jobs need each device count; per class and
pool, how many jobs wait; per class, the longest current wait. The scheduler loop keeps one
queue up to date (`add` when a job is queued or requeued, `remove` when it is placed or
cancelled); `schedule()` only reads it."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable, Iterator

from tass.core.scheduling.model import Priority, WaitingJob

StreamKey = tuple[Priority, str, str]
"""(class, tenant, pool key) of one stream."""
Entry = tuple[float, str]
"""(submitted_at, job_id): the order within a stream."""


class WaitingQueue:
    """Waiting jobs by stream, with the counts a cycle reads."""

    def __init__(self, jobs: Iterable[WaitingJob] = ()) -> None:
        self._jobs: dict[str, WaitingJob] = {}
        self._streams: dict[StreamKey, list[Entry]] = {}
        self._by_class: dict[Priority, dict[StreamKey, list[Entry]]] = {p: {} for p in Priority}
        self._demand: dict[str, Counter[tuple[bool, int]]] = {}
        self._class_pool: Counter[tuple[Priority, str]] = Counter()
        self._waits: dict[Priority, list[tuple[float, str]]] = {p: [] for p in Priority}
        for job in jobs:
            self.add(job)

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __iter__(self) -> Iterator[WaitingJob]:
        return iter(self._jobs.values())

    def get(self, job_id: str) -> WaitingJob:
        return self._jobs[job_id]

    def add(self, job: WaitingJob) -> None:
        if job.job_id in self._jobs:
            raise ValueError(f"job {job.job_id} is already waiting")
        self._jobs[job.job_id] = job
        pool = job.resources.pool_key
        key = (job.priority, job.tenant, pool)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = self._by_class[job.priority][key] = []
        bisect.insort(stream, (job.submitted_at, job.job_id))
        self._demand.setdefault(pool, Counter())[_demand_key(job)] += 1
        self._class_pool[(job.priority, pool)] += 1
        bisect.insort(self._waits[job.priority], (job.waiting_since, job.job_id))

    def remove(self, job_id: str) -> WaitingJob:
        job = self._jobs.pop(job_id)
        pool = job.resources.pool_key
        key = (job.priority, job.tenant, pool)
        _discard(self._streams[key], (job.submitted_at, job_id))
        if not self._streams[key]:
            del self._streams[key]
            del self._by_class[job.priority][key]
        demand = self._demand[pool]
        demand[_demand_key(job)] -= 1
        if demand[_demand_key(job)] == 0:
            del demand[_demand_key(job)]
        self._class_pool[(job.priority, pool)] -= 1
        _discard(self._waits[job.priority], (job.waiting_since, job_id))
        return job

    def streams(self, priority: Priority) -> list[tuple[StreamKey, list[Entry]]]:
        """The class's non-empty streams, in key order (deterministic)."""
        return sorted(self._by_class[priority].items(), key=lambda item: item[0])

    def stream_keys(self) -> list[StreamKey]:
        return sorted(self._streams)

    def smallest_demand(self, pool: str, gpu: bool) -> int | None:
        """The fewest devices per worker (GPUs, or CPU slots) any job waiting for `pool` needs
        (None: none waits)."""
        demand = self._demand.get(pool)
        sizes = [size for kind, size in demand if kind == gpu] if demand else []
        return min(sizes) if sizes else None

    def count(self, priority: Priority, pool: str) -> int:
        """Jobs of this class waiting for this pool."""
        return self._class_pool[(priority, pool)]

    def longest_wait_since(self, priority: Priority) -> float | None:
        """The earliest `waiting_since` among the class's jobs (None: none waits)."""
        waits = self._waits[priority]
        return waits[0][0] if waits else None


def _discard(items: list[tuple[float, str]], item: tuple[float, str]) -> None:
    index = bisect.bisect_left(items, item)
    if index == len(items) or items[index] != item:
        raise KeyError(item)
    del items[index]


def _demand_key(job: WaitingJob) -> tuple[bool, int]:
    return (job.resources.gpus > 0, job.resources.devices_per_worker)
