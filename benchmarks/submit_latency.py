"""Submit -> running through the real service (issue 27): an API process and one Celery worker
node (two CPU slots) on a private PostgreSQL and Redis (tests/support), each probe job submitted
over HTTP while the worker is idle and warm (every job process has imported TensorFlow), one at
a time. From the database's own timestamps, per probe:

- submit -> placed: the job's `queued` transition to the scheduler's placement (the scheduler's
  cycle interval, its reads and its transaction);
- placed -> running: the placement to the `running` transition (the task through Redis to the
  node's queue, Celery handing it to a job process, the claim);
- submit -> running: the sum, the figure the goal is about (p99 <= 1 s).

Then the same with 1,000 jobs waiting: another tenant's `low` jobs asking for a pool with no
live worker (a spot pool scaled to zero: accepted, never placed), so that every cycle of the
scheduler reads, orders and explains all of them, and the probes are `high`.

    .venv/bin/python benchmarks/submit_latency.py --probes 20 --waiting 1000 --out FILE
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from common import write_json
from sqlalchemy import Engine, select

from tass.core.db import make_engine
from tass.core.models import Job
from tass.migrations.runner import upgrade
from tests.support.processes import Service, start_api, start_worker
from tests.support.seed import new_api_key
from tests.support.servers import PostgresCluster, RedisServer

SLOTS = 2
PROBE_SPEC = {
    "model": "alexnet-cifar",
    "jit_compile": "off",
    "width": 0.25,
    "batch_size": 32,
    "epochs": 1,
}
PROBE_DATA = {"source": "synthetic", "num_examples": 200}
FINAL = {"succeeded", "failed", "cancelled"}


def service_env(folder: Path, database: str, broker: str) -> dict[str, str]:
    return {
        "TASS_DATA_DIR": str(folder),
        "TASS_DATABASE_URL": database,
        "TASS_BROKER_URL": broker,
        "TASS_ARTIFACT_URL": (folder / "artifacts").as_uri(),
        "TASS_WORKER_SLOTS": str(SLOTS),
        "TASS_HEARTBEAT_SECONDS": "1",
        "TASS_RATE_LIMIT": "100000/minute",  # the backlog is submitted over HTTP
        "TASS_MAX_ACTIVE_JOBS_PER_TENANT": "100000",
    }


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def warm_processes(worker: Service) -> int:
    """Job processes of the node that finished importing TensorFlow (worker/prewarm.py)."""
    return len(re.findall(r"job process \d+ pre-warmed", worker.log_tail(10**8)))


def wait_warm(worker: Service, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while warm_processes(worker) < count:
        if not worker.alive() or time.monotonic() > deadline:
            raise RuntimeError(
                f"the worker never warmed {count} job processes:\n{worker.log_tail()}"
            )
        time.sleep(0.2)


def poll(client: httpx.Client, job_id: str, done: set[str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in done:
            return job
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} never reached {done}")


def placed_at(engine: Engine, job_id: str) -> float:
    """When the scheduler placed the job (the API does not show it)."""
    with engine.connect() as connection:
        placement = connection.scalar(select(Job.placement).where(Job.id == job_id))
    if placement is None:
        raise RuntimeError(f"job {job_id} runs with no placement")
    return at(placement["at"])


def probe(
    client: httpx.Client, engine: Engine, worker: Service, finished: int, priority: str
) -> dict[str, float]:
    """One probe on an idle, warm node; it is cancelled once running, and the next probe waits
    until its job process's replacement has warmed up (the node is idle and warm again)."""
    body = {"type": "train", "spec": PROBE_SPEC, "dataset": PROBE_DATA, "priority": priority}
    response = client.post("/v1/jobs", json=body)
    response.raise_for_status()
    job_id = response.json()["id"]
    poll(client, job_id, {"running", *FINAL})
    placed = placed_at(engine, job_id)
    client.post(f"/v1/jobs/{job_id}/cancel")
    final = poll(client, job_id, FINAL)
    wait_warm(worker, SLOTS + finished + 1)
    submitted = at(final["transitions"][0]["at"])
    started = next(at(t["at"]) for t in final["transitions"] if t["status"] == "running")
    return {
        "submit_to_placed": placed - submitted,
        "placed_to_running": started - placed,
        "submit_to_running": started - submitted,
    }


def summary(samples: list[dict[str, float]]) -> dict[str, Any]:
    def quantiles(key: str) -> dict[str, float]:
        values = sorted(s[key] for s in samples)
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return {
            "p50": round(cuts[49], 3),
            "p99": round(cuts[98], 3),
            "max": round(values[-1], 3),
        }

    keys = ("submit_to_placed", "placed_to_running", "submit_to_running")
    return {"probes": len(samples), **{key: quantiles(key) for key in keys}}


def submit_backlog(client: httpx.Client, count: int) -> float:
    """`count` low jobs waiting for a pool with no worker; seconds the submits took."""
    body = {
        "type": "train",
        "spec": PROBE_SPEC,
        "dataset": PROBE_DATA,
        "priority": "low",
        "resources": {"pool": "spot"},
    }
    began = time.perf_counter()
    last = ""
    for _ in range(count):
        response = client.post("/v1/jobs", json=body)
        response.raise_for_status()
        last = response.json()["id"]
    seconds = time.perf_counter() - began
    deadline = time.monotonic() + 120  # the scheduler has ranked all of them
    while client.get(f"/v1/jobs/{last}").json()["queue_position"] is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the backlog was never ranked")
        time.sleep(0.2)
    return seconds


def measure(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    pg = PostgresCluster()
    redis = RedisServer(folder)
    services: list[Service] = []
    try:
        database = pg.create_database("latency")
        upgrade(database)
        env = service_env(folder, database, redis.url())
        api, url = start_api(env, folder)
        services.append(api)
        worker = start_worker(env, folder, name="bench")
        services.append(worker)
        prober, backlogger = (new_api_key(database, tenant) for tenant in ("probe", "backlog"))
        engine = make_engine(database)
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {prober}"}) as client,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {backlogger}"}) as other,
        ):
            wait_warm(worker, SLOTS)
            idle = [probe(client, engine, worker, i, "normal") for i in range(args.probes)]
            backlog_seconds = submit_backlog(other, args.waiting)
            done = args.probes
            deep = [probe(client, engine, worker, done + i, "high") for i in range(args.probes)]
        engine.dispose()
        return {
            "idle_warm_worker": summary(idle),
            f"with_{args.waiting}_waiting": summary(deep),
            "backlog_submit_seconds": round(backlog_seconds, 1),
            "samples": {"idle": idle, "waiting": deep},
        }
    finally:
        for service in reversed(services):
            service.stop()
            if args.logs:
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                shutil.copy(service.log_path, args.logs)
        redis.stop()
        pg.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("--logs", help="keep the API's and the worker's logs in this folder")
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tass-latency-") as folder:
        result = measure(args, Path(folder))
    result["machine"] = {"cpu_count": os.cpu_count(), "loadavg_at_start": load}
    result["loadavg_at_end"] = os.getloadavg()
    printable = {k: v for k, v in result.items() if k != "samples"}
    print(printable, flush=True)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
