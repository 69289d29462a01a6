"""Service load benchmark (issue 10): starts the API itself, embedded (SQLite, one process)
and/or on PostgreSQL + Redis (`tass api --workers N`), seeds a tenant, then measures req/s,
p50/p99 and errors for status polls (plain and If-None-Match -> 304), list, metric history and
status polls beside 20 slow downloads. Every scenario is followed at once by `/healthz` with the
same clients for the same time, and reported as a ratio to it: on a shared 2-core machine where
the load generator itself takes a core, absolute figures say more about the neighbours than
about the service.

    python benchmarks/load.py --setup embedded --setup postgres --seconds 5 --clients 64 \\
        --out benchmarks/results/load.json

The load generator is tests/support/load.py (asyncio + httpx, also used by the CI load tests):
no extra dependency, and it can hold 20 downloads open at 100 KB/s, which wrk cannot and
locust (not installed here; gevent) would only add weight to on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, write_json  # noqa: F401 - REPO puts the repository on sys.path

from tass.client.service import api_command
from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import create_job
from tass.core.job_results import upsert_metrics
from tass.core.objectstore import ObjectStore
from tass.migrations.runner import upgrade
from tests.support.load import LoadResult, hammer, slow_download
from tests.support.processes import Service, free_port, service_env, wait_http
from tests.support.seed import new_api_key, seed_trained_model

PG_ADMIN = os.environ.get("TASS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = "redis://127.0.0.1:6379/8"
SLOW_DOWNLOADS = 20
SLOW_RATE = 100_000  # bytes per second per download
MODEL_BYTES = 16 * 1024 * 1024


@dataclass
class Running:
    """A started service and what was seeded in it."""

    setup: str
    url: str
    headers: dict[str, str]
    job_id: str
    model_id: str
    etag: str


def seed(database_url: str, artifact_url: str) -> tuple[str, str, str]:
    """A tenant with 60 jobs (one with 100 epochs of metrics) and a 16 MB model."""
    key = new_api_key(database_url, "bench")
    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        jobs = [
            create_job(
                session, job_type="train", tenant="bench", queue="load-test", dataset={"x": 1}
            )
            for _ in range(60)
        ]
        for epoch in range(100):
            upsert_metrics(session, jobs[-1].id, "epoch", epoch, {"loss": 1 / (epoch + 1)})
        payload = os.urandom(MODEL_BYTES)
        model = seed_trained_model(session, ObjectStore(artifact_url), payload, tenant="bench")
        ids = jobs[-1].id, model.id
    engine.dispose()
    return key, *ids


@contextmanager
def started(setup: str, workers: int, folder: Path) -> Iterator[tuple[str, str, str]]:
    """(url, database URL, artifact URL) of a running API for `setup`; stopped afterwards."""
    artifact_url = (folder / "artifacts").resolve().as_uri()
    env = {
        "TASS_DATA_DIR": str(folder),
        "TASS_ARTIFACT_URL": artifact_url,
        "TASS_RATE_LIMIT": "100000000/minute",
        "TASS_TRAIN_QUEUE": "load-test",
    }
    database = f"sqlite:///{folder / 'tass.db'}"
    admin = None
    if setup == "postgres":
        import psycopg
        import redis

        name = f"tass_load_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        database = f"{base}/{name}"
        redis.Redis.from_url(REDIS_URL).flushdb()
        env |= {"TASS_DATABASE_URL": database, "TASS_BROKER_URL": REDIS_URL}
        env["PROMETHEUS_MULTIPROC_DIR"] = str(folder / "prometheus")
        (folder / "prometheus").mkdir()
    upgrade(database)
    port = free_port()
    count = workers if setup == "postgres" else 1
    argv = [*api_command("127.0.0.1", port, count), "--no-access-log"]
    service = Service(f"api-{setup}", argv, service_env(env), folder)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", service)
        yield f"http://127.0.0.1:{port}", database, artifact_url
    finally:
        service.stop()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()


def ratios(result: LoadResult, health: LoadResult) -> dict[str, Any]:
    return {
        **result.summary(),
        "healthz": health.summary(),
        "rate_vs_healthz": round(result.rate / health.rate, 3) if health.rate else None,
        "p99_vs_healthz": round(result.percentile(99) / health.percentile(99), 2)
        if health.latencies
        else None,
    }


async def beside_healthz(
    run: Running, name: str, paths: list[str], clients: int, seconds: float, **kw: Any
) -> dict[str, Any]:
    """The scenario, then /healthz with the same clients for the same time."""
    headers = run.headers | kw.get("extra", {})
    result = await hammer(run.url, headers, paths, clients=clients, seconds=seconds, name=name)
    health = await hammer(run.url, {}, ["/healthz"], clients=clients, seconds=seconds)
    return ratios(result, health)


async def beside_slow_downloads(run: Running, clients: int, seconds: float) -> dict[str, Any]:
    """Status polls while 20 clients read the model at 100 KB/s each, against status polls on
    the idle service measured just before."""
    status = [f"/v1/jobs/{run.job_id}"]
    idle = await hammer(run.url, run.headers, status, clients=clients, seconds=seconds)
    stop = asyncio.Event()
    path = f"/v1/models/{run.model_id}/download"
    readers = [
        asyncio.create_task(
            slow_download(run.url, run.headers, path, bytes_per_second=SLOW_RATE, stop=stop)
        )
        for _ in range(SLOW_DOWNLOADS)
    ]
    await asyncio.sleep(1.0)
    loaded = await hammer(run.url, run.headers, status, clients=clients, seconds=seconds)
    health = await hammer(run.url, {}, ["/healthz"], clients=clients, seconds=seconds)
    stop.set()
    received = await asyncio.gather(*readers, return_exceptions=True)
    return {
        **ratios(loaded, health),
        "scenario": f"status beside {SLOW_DOWNLOADS} slow downloads",
        "idle_status": idle.summary(),
        "p99_vs_idle_status": round(loaded.percentile(99) / idle.percentile(99), 2),
        "download_failures": sum(isinstance(r, BaseException) for r in received),
    }


# --- SSE fan-out (500 streams on one job) -----------------------------------------------------
# Measured by benchmarks/sse_fanout.py (the event-stream owner's script). To report it here, add
# an async callable taking (Running, clients, seconds) and returning a dict like the others:
EXTRA_SCENARIOS: dict[str, Callable[[Running, int, float], Awaitable[dict[str, Any]]]] = {}


async def scenarios(run: Running, clients: int, seconds: float) -> list[dict[str, Any]]:
    job = f"/v1/jobs/{run.job_id}"
    measured = [
        await beside_healthz(run, "status", [job], clients, seconds),
        await beside_healthz(
            run,
            "status If-None-Match (304)",
            [job],
            clients,
            seconds,
            extra={"If-None-Match": run.etag},
        ),
        await beside_healthz(run, "list (50 jobs)", ["/v1/jobs?limit=50"], clients, seconds),
        await beside_healthz(
            run, "metric history (100 epochs)", [f"{job}/metrics"], clients, seconds
        ),
        await beside_slow_downloads(run, clients, seconds),
    ]
    for name, scenario in EXTRA_SCENARIOS.items():
        measured.append({"scenario": name, **await scenario(run, clients, seconds)})
    return measured


def run_setup(setup: str, workers: int, clients: int, seconds: float) -> dict[str, Any]:
    import httpx

    with tempfile.TemporaryDirectory() as tmp, started(setup, workers, Path(tmp)) as service:
        url, database_url, artifact_url = service
        key, job_id, model_id = seed(database_url, artifact_url)
        headers = {"Authorization": f"Bearer {key}"}
        etag = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).headers["etag"]
        run = Running(setup, url, headers, job_id, model_id, etag)
        results = asyncio.run(scenarios(run, clients, seconds))
    api_processes = workers if setup == "postgres" else 1
    return {"setup": setup, "api_processes": api_processes, "scenarios": results}


def scenario_line(setup: str, row: dict[str, Any]) -> str:
    """One scenario's numbers, a line of the printed table."""
    return (
        f"{setup:8} {row['scenario']:36} {row['req_per_s']:8} req/s "
        f"p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms errors {row['errors']} "
        f"rate/healthz {row['rate_vs_healthz']} p99/healthz {row['p99_vs_healthz']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", action="append", choices=["embedded", "postgres"])
    parser.add_argument("--workers", type=int, default=2, help="API processes on PostgreSQL")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    report = {
        "clients": args.clients,
        "seconds_per_scenario": args.seconds,
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "runs": [],
    }
    for setup in args.setup or ["embedded", "postgres"]:
        outcome = run_setup(setup, args.workers, args.clients, args.seconds)
        report["runs"].append(outcome)
        for row in outcome["scenarios"]:
            print(scenario_line(setup, row), flush=True)
    write_json(args.out, report)


if __name__ == "__main__":
    main()
