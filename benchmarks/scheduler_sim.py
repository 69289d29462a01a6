"""Cluster-scale simulation of the scheduling policy (issue 27).

A discrete-event simulation with a simulated clock drives the service's own `schedule()`
(tass.core.scheduling, not a copy) against a simulated cluster: pools of GPU workers, tenants
with weights, and a seeded heavy-tailed trace of jobs (sizes from 1 GPU to 4-worker gangs,
log-normal durations, four priority classes).

Cycle cadence. The scheduler loop (worker/scheduler.py) cycles every
TASS_SCHEDULER_INTERVAL_SECONDS (0.25 s) while a job is queued. A cycle there changes nothing
unless something changed since the last one, so the simulation runs a cycle `--interval`
(0.25 s) after each event the loop would act on within one interval to the benefit of a waiting
job that cannot wait for the next tick: the arrival of a job whose class preempts without grace
(urgent) and the stop of a preempted job (its devices are held for the job that asked for them).
Every other change (arrivals, ends, a job passing its class's preemption grace or the reservation
bound) is picked up at the next `--cycle` tick (30 s) when something changed, and every
`--idle-cycle` (300 s) otherwise; `--react-to-all` also cycles one interval after every arrival
and every end (slower, closer still to the loop). Each cycle builds a snapshot, calls
`schedule()`, and applies the decision: placed jobs start and end after their remaining work;
preempted jobs checkpoint within `--checkpoint-bound` seconds, stop, pay `--restart-overhead`
seconds when they resume (or, with `--periodic-checkpoints-only`, lose the work since their
last periodic checkpoint) and go back to the queue with their submit time (their place) kept.

    .venv/bin/python benchmarks/scheduler_sim.py --json                  # the default cluster
    .venv/bin/python benchmarks/scheduler_sim.py --gpus 48 --tenants 5 --jobs 300 --json

It prints one JSON object: utilisation (busy GPU-seconds over all GPU-seconds of each pool,
counted only while a job waits for that pool); jain_index, the issue's definition: Jain's index
of usage / weight among the tenants backlogged in a pool (a job of any class waiting for it at
the sample), where usage is the tenant's GPU-seconds in the pool over the scheduler's decaying
window (the same decayed usage the policy orders by, half-life `--half-life`), sampled every 10
simulated minutes per pool and averaged; jain_index_top_class_settled, the same among only the
tenants backlogged at the pool's top waiting class for the last half-life (those the fair share
alone arbitrates between: classes come first by design); wait_p50/p99_seconds by class (submit
to first start); preemptions (and per simulated hour);
decision_ms p50/p99 (wall time of each schedule() call, also by how many jobs were waiting) and
decision_cpu_ms (the thread's CPU time, which a loaded machine disturbs less). Wall times depend
on the machine and its load: the JSON says what both were.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tass.core.scheduling import (  # noqa: E402  # after the repository is on the path
    Allocation,
    Decision,
    Priority,
    Resources,
    RunningJob,
    SchedulerConfig,
    Snapshot,
    Tenant,
    WaitingJob,
    WaitingQueue,
    Worker,
    accrue,
    schedule,
)

POOLS = (("a100", 0.4, 8), ("h100", 0.4, 8), ("t4", 0.2, 4))
"""(name, share of the GPUs, GPUs per worker)."""
SHAPES = ((1, 1, 0.50), (2, 1, 0.15), (4, 1, 0.15), (8, 1, 0.12), (8, 2, 0.05), (8, 4, 0.03))
"""(GPUs per worker, workers, probability): 1-GPU jobs to 4-worker gangs of 8."""
CLASSES = (
    (Priority.LOW, 0.25),
    (Priority.NORMAL, 0.55),
    (Priority.HIGH, 0.17),
    (Priority.URGENT, 0.03),
)


@dataclass
class SimJob:
    job_id: str
    tenant: str
    priority: Priority
    resources: Resources
    submitted: float
    remaining: float
    waiting_since: float = 0.0
    first_start: float | None = None
    started: float = 0.0
    attempt: int = 0
    progress_at_start: float = 0.0


@dataclass
class Metrics:
    busy_while_waiting: float = 0.0
    capacity_while_waiting: float = 0.0
    jain_samples: list[float] = field(default_factory=list)
    jain_settled_samples: list[float] = field(default_factory=list)
    decision_ms: list[tuple[int, float]] = field(default_factory=list)
    decision_cpu_ms: list[tuple[int, float]] = field(default_factory=list)
    preemptions: int = 0
    lost_gpu_seconds: float = 0.0
    cycles: int = 0


def build_cluster(gpus: int) -> dict[str, Worker]:
    workers: dict[str, Worker] = {}
    for name, share, size in POOLS:
        count = max(1, round(gpus * share / size))
        for i in range(count):
            worker_id = f"{name}-{i:03d}"
            workers[worker_id] = Worker(worker_id, name, size, tuple(range(size)))
    return workers


def build_tenants(count: int, rng: random.Random) -> dict[str, Tenant]:
    return {
        f"t{i:02d}": Tenant(f"t{i:02d}", weight=rng.choice((1.0, 1.0, 2.0, 4.0)))
        for i in range(count)
    }


def build_trace(
    args: argparse.Namespace, tenants: list[str], pool_workers: Counter[str], rng: random.Random
) -> list[SimJob]:
    """Heavy-tailed jobs: Zipf-like tenant activity, mixed shapes, log-normal durations; all
    arrive within a window that offers `--load` times the cluster's capacity."""
    activity = [1.0 / (i + 1) ** 0.8 for i in range(len(tenants))]
    classes = CLASSES if args.classes == "mixed" else ((Priority.NORMAL, 1.0),)
    jobs = []
    for i in range(args.jobs):
        pool, _, size = rng.choices(POOLS, weights=[p[1] for p in POOLS])[0]
        gpus, workers, _ = rng.choices(SHAPES, weights=[s[2] for s in SHAPES])[0]
        duration = min(max(rng.lognormvariate(math.log(600), 1.3), 60.0), 86400.0)
        jobs.append(
            SimJob(
                f"j{i:06d}",
                rng.choices(tenants, weights=activity)[0],
                rng.choices([c[0] for c in classes], weights=[c[1] for c in classes])[0],
                Resources(min(gpus, size), min(workers, pool_workers[pool]), pool),
                0.0,
                duration,
            )
        )
    work = sum(j.remaining * j.resources.total_gpus for j in jobs)
    window = work / (args.gpus * args.load)
    arrivals = sorted(rng.uniform(0, window) for _ in jobs)
    for job, at in zip(jobs, arrivals, strict=True):
        job.submitted = job.waiting_since = round(at, 3)
    return jobs


class Ledger:
    """Decayed usage per key, brought up to date lazily (when the key's allocation moves, and
    before each cycle and sample), exact whatever the step."""

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self.usage: dict[Any, float] = defaultdict(float)
        self.held: Counter[Any] = Counter()
        self.accrued_at: dict[Any, float] = {}

    def touch(self, key: Any, now: float) -> None:
        elapsed = now - self.accrued_at.get(key, now)
        if elapsed > 0:
            self.usage[key] = accrue(self.usage[key], self.held[key], elapsed, self.half_life)
        self.accrued_at[key] = now

    def touch_all(self, now: float) -> None:
        for key in list(self.accrued_at):
            self.touch(key, now)


class Simulation:
    """The simulated cluster, its event heap and clock, and the bookkeeping of metrics."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        self.args = args
        self.rng = rng
        self.config = SchedulerConfig(
            half_life_s=args.half_life,
            reserve_after_s=args.reserve_after,
            reservations_per_pool=args.reservations,
        )
        self.workers = build_cluster(args.gpus)
        self.total_gpus = sum(w.total for w in self.workers.values())
        self.pool_gpus: Counter[str] = Counter()
        for worker in self.workers.values():
            self.pool_gpus[worker.pool] += worker.total
        self.busy_in: Counter[str] = Counter()
        self.waiting_in: Counter[str] = Counter()
        self.tenants = build_tenants(args.tenants, rng)
        pool_workers = Counter(w.pool for w in self.workers.values())
        trace = build_trace(args, sorted(self.tenants), pool_workers, rng)
        self.jobs = {j.job_id: j for j in trace}
        self.queue = WaitingQueue()
        self.running: dict[str, RunningJob] = {}
        self.ledger = Ledger(args.half_life)
        """Decayed usage per (tenant, pool): the scheduler's input."""
        self.usage = self.ledger.usage
        self.backlog: Counter[tuple[str, str, str]] = Counter()
        self.backlogged_since: dict[tuple[str, str, str], float] = {}
        self.backlog_by_class: Counter[tuple[str, str]] = Counter()
        self.events: list[tuple[float, int, str, str, int]] = []
        self.sequence = 0
        self.now = 0.0
        self.busy = 0
        self.metrics = Metrics()
        self.peak_waiting = 0
        self.listing: dict[str, float] | None = None
        for job in self.jobs.values():
            self._push(job.submitted, "arrive", job.job_id, 0)

    def _push(self, at: float, kind: str, job_id: str, attempt: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, kind, job_id, attempt))

    def advance(self, to: float) -> None:
        """Move the clock, integrating utilisation and usage over the interval."""
        elapsed = to - self.now
        if elapsed <= 0:
            return
        for pool, size in self.pool_gpus.items():
            if self.waiting_in[pool]:
                self.metrics.busy_while_waiting += self.busy_in[pool] * elapsed
                self.metrics.capacity_while_waiting += size * elapsed
        self.now = to

    def accrue_all(self) -> None:
        self.ledger.touch_all(self.now)

    def enqueue(self, job: SimJob) -> None:
        job.waiting_since = self.now
        self.queue.add(
            WaitingJob(job.job_id, job.tenant, job.priority, job.resources, job.submitted, self.now)
        )
        pool = job.resources.pool or ""
        for key in ((job.tenant, pool, ""), (job.tenant, pool, job.priority.label)):
            if self.backlog[key] == 0:
                self.backlogged_since[key] = self.now
            self.backlog[key] += 1
        self.waiting_in[pool] += 1
        self.backlog_by_class[(pool, job.priority.label)] += 1
        self.peak_waiting = max(self.peak_waiting, len(self.queue))

    def _dequeue(self, job: SimJob) -> None:
        self.queue.remove(job.job_id)
        pool = job.resources.pool or ""
        for key in ((job.tenant, pool, ""), (job.tenant, pool, job.priority.label)):
            self.backlog[key] -= 1
            if self.backlog[key] == 0:
                del self.backlogged_since[key]
        self.waiting_in[pool] -= 1
        self.backlog_by_class[(pool, job.priority.label)] -= 1

    def _set_free(self, worker_id: str, free: tuple[int, ...]) -> None:
        old = self.workers[worker_id]
        self.workers[worker_id] = Worker(old.worker_id, old.pool, old.total, tuple(sorted(free)))

    def start(self, job_id: str, pool: str, allocations: tuple[Allocation, ...]) -> None:
        job = self.jobs[job_id]
        self._dequeue(job)
        for allocation in allocations:
            free = set(self.workers[allocation.worker_id].free) - set(allocation.devices)
            self._set_free(allocation.worker_id, tuple(free))
        job.attempt += 1
        job.started = self.now
        if job.first_start is None:
            job.first_start = self.now
        self.running[job_id] = RunningJob(
            job_id, job.tenant, job.priority, job.resources, pool, allocations, self.now
        )
        self.ledger.touch((job.tenant, pool), self.now)
        self.ledger.held[(job.tenant, pool)] += job.resources.total_gpus
        self.busy += job.resources.total_gpus
        self.busy_in[pool] += job.resources.total_gpus
        self._push(self.now + job.remaining, "finish", job_id, job.attempt)

    def release(self, job_id: str) -> SimJob:
        job = self.jobs[job_id]
        running = self.running.pop(job_id)
        for allocation in running.allocations:
            free = self.workers[allocation.worker_id].free + allocation.devices
            self._set_free(allocation.worker_id, free)
        self.ledger.touch((job.tenant, running.pool), self.now)
        self.ledger.held[(job.tenant, running.pool)] -= job.resources.total_gpus
        self.busy -= job.resources.total_gpus
        self.busy_in[running.pool] -= job.resources.total_gpus
        return job

    def preempt(self, victim_id: str) -> None:
        """Ask the victim to checkpoint: it stops within the bound (its work until then kept)."""
        running = self.running[victim_id]
        self.running[victim_id] = RunningJob(
            running.job_id,
            running.tenant,
            running.priority,
            running.resources,
            running.pool,
            running.allocations,
            running.started_at,
            stopping=True,
        )
        delay = self.rng.uniform(0.05, 1.0) * self.args.checkpoint_bound
        self._push(self.now + delay, "stopped", victim_id, self.jobs[victim_id].attempt)
        self.metrics.preemptions += 1

    def stopped(self, job_id: str) -> None:
        job = self.release(job_id)
        ran = self.now - job.started
        lost = self.args.restart_overhead
        if self.args.periodic_checkpoints_only:
            lost += ran % self.args.checkpoint_every
        job.remaining = max(job.remaining - ran, 0.0) + lost
        self.metrics.lost_gpu_seconds += lost * job.resources.total_gpus
        self.enqueue(job)

    def handle(self, kind: str, job_id: str, attempt: int) -> None:
        job = self.jobs[job_id]
        if kind == "arrive":
            self.enqueue(job)
        elif attempt != job.attempt or job_id not in self.running:
            return  # the end of an attempt that was preempted meanwhile
        elif kind == "finish":  # (also a victim that ended before its checkpoint)
            self.release(job_id)
            job.remaining = 0.0
        else:
            self.stopped(job_id)

    def cycle(self) -> Decision:
        self.accrue_all()
        snapshot = Snapshot(
            list(self.workers.values()),
            self.queue,
            list(self.running.values()),
            self.tenants,
            self.usage,
        )
        waiting = len(self.queue)
        began, began_cpu = time.perf_counter(), time.thread_time()
        decision = schedule(snapshot, self.now, self.config)
        elapsed_ms = (time.perf_counter() - began) * 1000
        self.metrics.decision_ms.append((waiting, elapsed_ms))
        self.metrics.decision_cpu_ms.append((waiting, (time.thread_time() - began_cpu) * 1000))
        self.metrics.cycles += 1
        if self.listing is None and waiting >= self.args.jobs * 0.75:
            self.listing = measure_listing(decision, waiting)
        for placement in decision.placements:
            self.start(placement.job_id, placement.pool, placement.allocations)
        for preemption in decision.preemptions:
            self.preempt(preemption.victim_id)
        return decision

    def sample_fairness(self) -> None:
        """Jain's index of usage / weight in each pool, usage being the scheduler's own decayed
        GPU-seconds in the pool (the issue's "GPU-seconds over a decaying window"):
        `jain_samples` among the tenants backlogged there now (a job of any class waiting for
        the pool: the issue's definition); `jain_settled_samples` among those backlogged at the
        pool's top waiting class for the last half-life (the tenants the fair share alone
        arbitrates between, once their usage had time to follow it)."""
        self.accrue_all()
        since = self.now - self.args.half_life
        groups: dict[tuple[str, bool], list[float]] = defaultdict(list)
        for pool in sorted(self.pool_gpus):
            waiting = [c for c in Priority if self.backlog_by_class[(pool, c.label)] > 0]
            top = max(waiting).label if waiting else None
            for tenant in sorted(self.tenants):
                weight = self.tenants[tenant].weight
                used = self.ledger.usage.get((tenant, pool), 0.0) / weight
                if self.backlog[(tenant, pool, "")] > 0:
                    groups[(pool, False)].append(used)
                if self.backlogged_since.get((tenant, pool, top or ""), math.inf) <= since:
                    groups[(pool, True)].append(used)
        for (_, settled), values in sorted(groups.items()):
            if len(values) >= 2 and sum(values) > 0:
                jain = sum(values) ** 2 / (len(values) * sum(v * v for v in values))
                metrics = self.metrics
                (metrics.jain_settled_samples if settled else metrics.jain_samples).append(jain)

    def reacts_to(self, kind: str, job: SimJob) -> bool:
        """Whether the scheduler loop would act on this event within its interval: the
        arrival of a job whose class preempts without grace (urgent), the stop of a preempted
        job (its devices are held for the job that preempted it), and with `--react-to-all`
        every arrival and every end."""
        if kind == "stopped" or self.args.react_to_all:
            return True
        return kind == "arrive" and self.config.preemption_grace_s.get(job.priority) == 0.0

    def run(self) -> None:
        tick = self.args.cycle
        next_sample = 0.0
        last_cycle = -math.inf
        due = math.inf  # a cycle one loop interval after an event the loop reacts to
        while self.events or self.running or len(self.queue):
            upcoming = self.events[0][0] if self.events else math.inf
            at = min(max(math.ceil(upcoming / tick) * tick, last_cycle + tick), due)
            if len(self.queue) and self.now - last_cycle >= self.args.idle_cycle:
                at = min(at, last_cycle + self.args.idle_cycle)
            if at == math.inf:
                break
            while self.events and self.events[0][0] <= at:
                when, _, kind, job_id, attempt = heapq.heappop(self.events)
                self.advance(when)
                self.handle(kind, job_id, attempt)
                if self.reacts_to(kind, self.jobs[job_id]):
                    due = min(due, when + self.args.interval)
                    at = min(at, due)
            self.advance(at)
            while next_sample <= self.now:
                self.sample_fairness()
                next_sample += self.args.sample_every
            if len(self.queue):
                self.cycle()
            last_cycle = at
            if due <= at:
                due = math.inf


def measure_listing(decision: Decision, waiting: int) -> dict[str, float]:
    """CPU time to answer what the API will ask of a decision at a deep queue: the first page
    of the queue with reasons, every job's position, and every job's reason."""
    began = time.thread_time()
    decision.waiting(limit=50)
    first_page = time.thread_time()
    decision.status(decision.waiting(offset=decision.waiting_count - 1)[0].job_id)
    positions = time.thread_time()
    decision.waiting()
    everything = time.thread_time()
    return {
        "waiting": waiting,
        "first_page_cpu_ms": round((first_page - began) * 1000, 1),
        "all_positions_cpu_ms": round((positions - first_page) * 1000, 1),
        "all_reasons_cpu_ms": round((everything - positions) * 1000, 1),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def summarise(sim: Simulation, wall_s: float) -> dict[str, Any]:
    metrics = sim.metrics
    waits: dict[str, list[float]] = defaultdict(list)
    for job in sim.jobs.values():
        if job.first_start is not None:
            waits[job.priority.label].append(job.first_start - job.submitted)
    hours = sim.now / 3600
    decision = [ms for _, ms in metrics.decision_ms]
    buckets = {"<1k": (0, 1000), "1k-10k": (1000, 10000), "10k-50k": (10000, 50000)}
    buckets[">=50k"] = (50000, 10**9)
    by_waiting = {
        name: percentile([ms for n, ms in metrics.decision_ms if lo <= n < hi], 99)
        for name, (lo, hi) in buckets.items()
    }
    cpu = [ms for _, ms in metrics.decision_cpu_ms]
    cpu_by_waiting = {
        name: percentile([ms for n, ms in metrics.decision_cpu_ms if lo <= n < hi], 99)
        for name, (lo, hi) in buckets.items()
    }
    utilisation = metrics.busy_while_waiting / max(metrics.capacity_while_waiting, 1e-9)
    return {
        "gpus": sim.total_gpus,
        "workers": len(sim.workers),
        "tenants": len(sim.tenants),
        "jobs": len(sim.jobs),
        "finished": sum(1 for j in sim.jobs.values() if j.remaining == 0.0),
        "simulated_hours": round(hours, 2),
        "utilisation": round(utilisation, 4),
        "jain_index": _mean(metrics.jain_samples),
        "jain_index_p5": _round(percentile(metrics.jain_samples, 5)),
        "jain_index_top_class_settled": _mean(metrics.jain_settled_samples),
        "jain_index_top_class_settled_p5": _round(percentile(metrics.jain_settled_samples, 5)),
        "wait_p50_seconds": {c: _round(percentile(w, 50)) for c, w in sorted(waits.items())},
        "wait_p99_seconds": {c: _round(percentile(w, 99)) for c, w in sorted(waits.items())},
        "preemptions": metrics.preemptions,
        "preemptions_per_hour": round(metrics.preemptions / max(hours, 1e-9), 2),
        "lost_gpu_hours": round(metrics.lost_gpu_seconds / 3600, 1),
        "cycles": metrics.cycles,
        "peak_waiting": sim.peak_waiting,
        "decision_ms_p50": _round(percentile(decision, 50)),
        "decision_ms_p99": _round(percentile(decision, 99)),
        "decision_ms_max": _round(max(decision, default=0.0)),
        "decision_ms_p99_by_waiting": {k: _round(v) for k, v in by_waiting.items()},
        "decision_cpu_ms_p50": _round(percentile(cpu, 50)),
        "decision_cpu_ms_p99": _round(percentile(cpu, 99)),
        "decision_cpu_ms_p99_by_waiting": {k: _round(v) for k, v in cpu_by_waiting.items()},
        "queue_listing": sim.listing,
        "checkpoint_bound_seconds": sim.args.checkpoint_bound,
        "cycle_seconds": sim.args.cycle,
        "interval_seconds": sim.args.interval,
        "react_to_all": sim.args.react_to_all,
        "wall_seconds": round(wall_s, 1),
        "machine": {"cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
    }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpus", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--load", type=float, default=8.0, help="offered load while jobs arrive")
    parser.add_argument("--cycle", type=float, default=30.0, help="seconds between cycles")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.25,
        help="the loop's TASS_SCHEDULER_INTERVAL_SECONDS: a cycle this long after an event it "
        "reacts to (an urgent arrival, a preempted job's stop)",
    )
    parser.add_argument(
        "--react-to-all",
        action="store_true",
        help="also cycle one interval after every arrival and every end (slower)",
    )
    parser.add_argument("--idle-cycle", type=float, default=300.0, help="cycle at least this often")
    parser.add_argument(
        "--half-life", type=float, default=SchedulerConfig().half_life_s, help="the service's"
    )
    parser.add_argument("--reserve-after", type=float, default=1800.0)
    parser.add_argument("--reservations", type=int, default=1, help="per pool")
    parser.add_argument("--checkpoint-bound", type=float, default=120.0)
    parser.add_argument("--restart-overhead", type=float, default=30.0)
    parser.add_argument("--checkpoint-every", type=float, default=900.0)
    parser.add_argument("--periodic-checkpoints-only", action="store_true")
    parser.add_argument(
        "--classes", choices=("mixed", "normal"), default="mixed", help="normal: one class only"
    )
    parser.add_argument("--sample-every", type=float, default=600.0)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    began = time.perf_counter()
    sim = Simulation(args)
    sim.run()
    result = summarise(sim, time.perf_counter() - began)
    if not args.json:
        print(f"simulated {result['simulated_hours']} h in {result['wall_seconds']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
