"""Scheduler cycle time with its database queries, at 100,000 waiting jobs (issue 27).

`benchmarks/scheduler_sim.py` times the pure policy; this times what the scheduler loop really
runs each cycle: `worker.scheduler.Scheduler.cycle` (the lease check, `load_cluster`, the policy,
`apply_decision` with every waiting job's place and reason, the commit) against a throwaway
PostgreSQL database on the machine's server (created with a unique name, migrated with
`tass.migrations.runner.upgrade`, dropped afterwards), with a stub task sender.

The database holds a cluster like the simulation's (150 GPU workers in 3 pools, 1,000 GPUs),
every GPU busy with running jobs, and `--jobs` queued jobs across 50 tenants, 4 classes and the
simulation's shapes. Between two timed cycles (not timed) the workers claim what was placed and
`--finish` running jobs end, so each cycle places a few jobs and the places of the jobs behind
them move: the loop's steady state under a deep queue. The first cycle (every job's place and
reason written from nothing) is reported apart.

    .venv/bin/python benchmarks/scheduler_db.py --json
    .venv/bin/python benchmarks/scheduler_db.py --jobs 10000 --cycles 10 --json

It prints one JSON object: per part (`lease`+`load_cluster`, `schedule`, `apply_decision` and
within it `store_positions`, `commit_and_rest`), p50/p99 ms of wall time over the timed
cycles, the whole cycle's p50/p99, and how many rows each cycle placed and re-positioned.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sqlalchemy import insert, select, update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import tass.core.scheduler_store as store  # noqa: E402  # after the repository is on the path
import tass.worker.scheduler as loop  # noqa: E402
from tass.contract.statuses import JobStatus  # noqa: E402
from tass.core.db import make_engine, make_session_factory  # noqa: E402
from tass.core.models import Job, TenantSettings  # noqa: E402
from tass.core.models import Worker as WorkerRow  # noqa: E402
from tass.core.settings import Settings  # noqa: E402
from tass.migrations.runner import upgrade  # noqa: E402

POOLS = (("a100", 50, 8), ("h100", 50, 8), ("t4", 50, 4))
"""(pool, workers, GPUs per worker): the simulation's 1,000-GPU cluster."""
SHAPES = ((1, 1, 0.50), (2, 1, 0.15), (4, 1, 0.15), (8, 1, 0.12), (8, 2, 0.05), (8, 4, 0.03))
"""(GPUs per worker, workers, probability), as in the simulation."""
CLASSES = ((0, 0.25), (1, 0.55), (2, 0.17), (3, 0.03))
"""(priority, probability): low, normal, high, urgent."""
RUNNING_CLASS = 3
"""The running jobs' class: urgent, so that nothing waiting may preempt them (the steady state
of a full cluster once preemptions have settled: a cycle places only into devices that freed)."""


class StubSender:
    """A task sender that only counts (the broker is not what is measured)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_task(self, name: str, *, args: list[Any], queue: str, task_id: str) -> None:
        self.sent += 1


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """A database of this run's own on the server of `admin_url`, dropped afterwards."""
    name = f"tass_schedbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _placement(pool: str, worker: str, devices: list[int], at: datetime) -> dict[str, Any]:
    allocations = [{"worker": worker, "devices": devices}]
    return {"pool": pool, "worker": worker, "allocations": allocations, "at": at.isoformat()}


def _job_row(tenant: str, priority: int, resources: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": "train",
        "status": JobStatus.QUEUED.value,
        "dataset": {},
        "tags": {},
        "tenant": tenant,
        "queue": "train",
        "attempt": 1,
        "created_at": at,
        "queued_at": at,
        "priority": priority,
        "resources": resources,
    }


def fill(factory: Any, jobs: int, tenants: int, rng: random.Random) -> dict[str, int]:
    """Workers, tenants, a cluster busy to its last GPU, and `jobs` waiting jobs."""
    now = datetime.now(UTC)
    names = [f"t{i:02d}" for i in range(tenants)]
    activity = [1.0 / (i + 1) ** 0.8 for i in range(tenants)]
    running = []
    with factory.begin() as session:
        for pool, count, size in POOLS:
            for i in range(count):
                worker = f"{pool}-{i:03d}"
                session.add(_worker_row(worker, pool, size, now))
                device = 0
                while device < size:  # fill it with 1-, 2- and 4-GPU jobs
                    gpus = min(rng.choice((1, 2, 4)), size - device)
                    tenant = rng.choices(names, activity)[0]
                    row = _job_row(tenant, RUNNING_CLASS, {"gpus": gpus}, now)
                    row["resources"]["pool"] = pool
                    devices = list(range(device, device + gpus))
                    row.update(
                        status=JobStatus.RUNNING.value,
                        started_at=now,
                        worker_id=f"{worker}/1",
                        placement=_placement(pool, worker, devices, now),
                    )
                    running.append(row)
                    device += gpus
        session.add_all(
            TenantSettings(name=t, weight=rng.choice((1.0, 1.0, 2.0, 4.0))) for t in names
        )
        session.execute(insert(Job), running)
    for start in range(0, jobs, 5000):
        rows = [
            _waiting_row(rng, names, activity, now - timedelta(seconds=jobs - i))
            for i in range(start, min(start + 5000, jobs))
        ]
        with factory.begin() as session:
            session.execute(insert(Job), rows)
    return {"running": len(running), "waiting": jobs}


def _worker_row(name: str, pool: str, size: int, now: datetime) -> WorkerRow:
    gpus = [f"GPU {i}" for i in range(size)]
    return WorkerRow(
        name=name, host="bench", pid=1, queues=[], device="gpu", gpus=gpus, pool=pool, slots=size
    )


def _waiting_row(
    rng: random.Random, names: list[str], activity: list[float], at: datetime
) -> dict[str, Any]:
    pool, _, size = rng.choice(POOLS)
    gpus, workers, _ = rng.choices(SHAPES, weights=[s[2] for s in SHAPES])[0]
    resources = {"gpus": min(gpus, size), "workers": workers, "pool": pool}
    return _job_row(rng.choices(names, activity)[0], _priority(rng), resources, at)


def _priority(rng: random.Random) -> int:
    return rng.choices([c[0] for c in CLASSES], weights=[c[1] for c in CLASSES])[0]


def between_cycles(factory: Any, finish: int, rng: random.Random) -> None:
    """What happens between two cycles (not timed): the workers claim what was placed, the
    jobs asked to stop checkpoint and wait again, and `finish` other running jobs end."""
    now = datetime.now(UTC)
    with factory.begin() as session:
        session.execute(
            update(Job)
            .where(Job.status == JobStatus.RUNNING.value, Job.preempt_requested_at.is_not(None))
            .values(
                status=JobStatus.QUEUED.value,
                placement=None,
                preempt_requested_at=None,
                queued_at=now,
                attempt=Job.attempt + 1,
            )
        )
        session.execute(
            update(Job)
            .where(Job.status == JobStatus.QUEUED.value, Job.placement.is_not(None))
            .values(status=JobStatus.RUNNING.value, started_at=now)
        )
        running = list(
            session.scalars(
                select(Job.id).where(
                    Job.status == JobStatus.RUNNING.value, Job.preempt_requested_at.is_(None)
                )
            )
        )
        ended = rng.sample(sorted(running), min(finish, len(running)))
        session.execute(
            update(Job)
            .where(Job.id.in_(ended))
            .values(status=JobStatus.SUCCEEDED.value, finished_at=now)
        )


class PartTimer:
    """Wall time of the loop's parts, by wrapping the functions the loop calls by name."""

    PARTS = (
        (loop, "load_cluster"),
        (loop, "schedule"),
        (loop, "apply_decision"),
        (store, "_store_positions"),
    )

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        for module, name in self.PARTS:
            setattr(module, name, self._timed(name, getattr(module, name)))

    def _timed(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = (time.perf_counter() - began) * 1000
                self.current[name] = self.current.get(name, 0.0) + elapsed

        return timed


def row_by_row(session: Session, rows: list[tuple[str, int | None, str]]) -> None:
    """The baseline: one UPDATE per changed row, as the store wrote positions before."""
    for job_id, position, reason in rows:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED.value)
            .values(queue_position=position, pending_reason=reason)
        )


def run_cycles(
    factory: Any,
    args: argparse.Namespace,
    rng: random.Random,
    cycles: int,
    shown: int = Settings.model_fields["scheduler_positions_shown"].default,
) -> dict[str, Any]:
    settings = Settings(
        data_dir=Path("/tmp"),
        broker_url="memory://",
        heartbeat_timeout_seconds=86400.0,
        scheduler_positions_shown=shown,
    )
    sender = StubSender()
    scheduler = loop.Scheduler(sender, factory, settings, holder="bench")
    timer = PartTimer()
    samples: list[dict[str, float]] = []
    for number in range(cycles + 1):
        if number:
            between_cycles(factory, args.finish, rng)
        timer.current = {}
        sent_before = sender.sent
        began = time.perf_counter()
        scheduler.cycle()
        total = (time.perf_counter() - began) * 1000
        parts = dict(timer.current)
        parts["cycle"] = total
        parts["commit_and_rest"] = total - sum(
            parts.get(name, 0.0) for name in ("load_cluster", "schedule", "apply_decision")
        )
        parts["placed"] = sender.sent - sent_before
        samples.append(parts)
    return {"first_cycle": _rounded(samples[0]), "steady": _summary(samples[1:])}


def _rounded(sample: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 1) for k, v in sample.items()}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, -(-len(ordered) * q // 100) - 1))
    return round(ordered[int(index)], 1)


def _summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    names = sorted({k for s in samples for k in s})
    return {
        name: {
            "p50": _percentile([s.get(name, 0.0) for s in samples], 50),
            "p99": _percentile([s.get(name, 0.0) for s in samples], 99),
            "mean": round(statistics.fmean(s.get(name, 0.0) for s in samples), 1),
        }
        for name in names
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000, help="waiting jobs")
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=30, help="timed cycles after the first")
    parser.add_argument("--finish", type=int, default=3, help="running jobs that end per cycle")
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument(
        "--baseline-cycles",
        type=int,
        default=0,
        help="first time this many cycles writing positions one UPDATE per row (the baseline)",
    )
    parser.add_argument(
        "--all-positions-cycles",
        type=int,
        default=0,
        help="first time this many cycles storing every waiting job's place (as before "
        "TASS_SCHEDULER_POSITIONS_SHOWN bounded it), for the ratio",
    )
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get("TASS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a database on the server to create the throwaway one from",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    with throwaway_database(args.pg_admin) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        began = time.perf_counter()
        rows = fill(factory, args.jobs, args.tenants, rng)
        filled = time.perf_counter() - began
        if not args.json:
            print(f"filled {rows} in {filled:.1f} s", file=sys.stderr)
        result: dict[str, Any] = {}
        if args.baseline_cycles:
            batched = store.store_positions
            store.store_positions = row_by_row
            result["baseline_row_by_row"] = run_cycles(factory, args, rng, args.baseline_cycles)
            store.store_positions = batched
        if args.all_positions_cycles:
            every = run_cycles(factory, args, rng, args.all_positions_cycles, shown=args.jobs)
            result["every_place_stored"] = every
        result.update(run_cycles(factory, args, rng, args.cycles))
        engine.dispose()
    result.update(
        rows=rows,
        cycles=args.cycles,
        finish_per_cycle=args.finish,
        fill_seconds=round(filled, 1),
        machine={"cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
