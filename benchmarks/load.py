"""Service load benchmark (issue 10): starts the API itself, embedded (SQLite, one process)
and/or on PostgreSQL + Redis (`tass api --workers N`), seeds a tenant, then measures req/s,
p50/p99 and errors for status polls (plain and If-None-Match -> 304), list, metric history and
status polls beside 20 slow downloads. Every scenario is followed at once by `/healthz` with the
same clients for the same time and reported as a ratio to it (the machine is shared: ratios
from one run compare, absolute figures drift). `--soak 60` adds status polls from 256 clients
for 60 s; every setup ends by timing one status request right after the load. Each setup
starts with `--warmup` seconds (default 2) of status polls that are not reported.

    python benchmarks/load.py --seconds 5 --clients 64 --soak 60 --out benchmarks/results/load.json

The load generator is wrk when it is installed (`apt-get install wrk`; scripts/setup.sh
installs it with the dev extra): a C client on epoll uses a few percent of a core where a
Python client needs one, so on 2 cores it measures the server, not itself. The 20 slow
downloads are read by tests/support/load.py (asyncio + httpx, also used by the CI load tests),
which can hold a download open at 100 KB/s; without wrk (`--client python`) it measures
everything. Locust was not picked: its gevent workers are a Python client too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import REPO, write_json  # noqa: F401 - REPO puts the repository on sys.path
from wrk import run_wrk, wrk_available

from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import create_job
from tass.core.job_results import upsert_metrics
from tass.core.objectstore import ObjectStore
from tass.migrations.runner import upgrade
from tass.operators.service import api_command
from tests.support.load import hammer, slow_download
from tests.support.processes import Service, free_port, service_env, wait_http
from tests.support.seed import new_api_key, seed_trained_model
from tests.support.servers import RedisServer

PG_ADMIN = os.environ.get("TASS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
SLOW_DOWNLOADS = 20
SLOW_RATE = 100_000  # bytes per second per download
MODEL_BYTES = 16 * 1024 * 1024
SOAK_CLIENTS = 256


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
def started(
    setup: str,
    workers: int,
    folder: Path,
    threads: int | None = None,
    settings: dict[str, str] | None = None,
) -> Iterator[tuple[str, str, str]]:
    """(url, database URL, artifact URL) of a running API for `setup`; stopped afterwards."""
    artifact_url = (folder / "artifacts").resolve().as_uri()
    env = {
        "TASS_DATA_DIR": str(folder),
        "TASS_ARTIFACT_URL": artifact_url,
        "TASS_RATE_LIMIT": "100000000/minute",
        "TASS_TRAIN_QUEUE": "load-test",
        **({"TASS_API_THREADS": str(threads)} if threads else {}),
        **(settings or {}),
    }
    database = f"sqlite:///{folder / 'tass.db'}"
    admin = broker = None
    if setup == "postgres":
        import psycopg

        name = f"tass_load_{uuid.uuid4().hex[:8]}"
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
        admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        database = f"{base}/{name}"
        (folder / "redis").mkdir()
        broker = RedisServer(folder / "redis")  # a broker of its own: the machine's is left alone
        env |= {"TASS_DATABASE_URL": database, "TASS_BROKER_URL": broker.url()}
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
        if broker is not None:
            broker.stop()
        if admin is not None:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.close()


@dataclass
class Client:
    """The load generator: wrk (C, epoll) when installed, else tests/support/load.py."""

    use_wrk: bool

    async def measure(
        self, url: str, headers: dict[str, str], path: str, clients: int, seconds: float, name: str
    ) -> dict[str, Any]:
        if self.use_wrk:
            return await asyncio.to_thread(
                run_wrk, url + path, headers, clients=clients, seconds=seconds, name=name
            )
        result = await hammer(url, headers, [path], clients=clients, seconds=seconds, name=name)
        return result.summary()


def ratios(result: dict[str, Any], health: dict[str, Any]) -> dict[str, Any]:
    return {
        **result,
        "healthz": health,
        "rate_vs_healthz": round(result["req_per_s"] / health["req_per_s"], 3)
        if health["req_per_s"]
        else None,
        "p99_vs_healthz": round(result["p99_ms"] / health["p99_ms"], 2)
        if health["p99_ms"]
        else None,
    }


async def beside_healthz(
    run: Running, client: Client, name: str, path: str, clients: int, seconds: float, **kw: Any
) -> dict[str, Any]:
    """The scenario, then /healthz with the same clients for the same time."""
    headers = run.headers | kw.get("extra", {})
    result = await client.measure(run.url, headers, path, clients, seconds, name)
    health = await client.measure(run.url, {}, "/healthz", clients, seconds, "healthz")
    return ratios(result, health)


async def beside_slow_downloads(
    run: Running, client: Client, clients: int, seconds: float
) -> dict[str, Any]:
    """Status polls while 20 clients read the model at 100 KB/s each, against status polls on
    the idle service measured just before."""
    status = f"/v1/jobs/{run.job_id}"
    name = f"status beside {SLOW_DOWNLOADS} slow downloads"
    idle = await client.measure(run.url, run.headers, status, clients, seconds, "status")
    stop = asyncio.Event()
    path = f"/v1/models/{run.model_id}/download"
    readers = [
        asyncio.create_task(
            slow_download(run.url, run.headers, path, bytes_per_second=SLOW_RATE, stop=stop)
        )
        for _ in range(SLOW_DOWNLOADS)
    ]
    await asyncio.sleep(1.0)
    loaded = await client.measure(run.url, run.headers, status, clients, seconds, name)
    health = await client.measure(run.url, {}, "/healthz", clients, seconds, "healthz")
    stop.set()
    received = await asyncio.gather(*readers, return_exceptions=True)
    return {
        **ratios(loaded, health),
        "idle_status": idle,
        "p99_vs_idle_status": round(loaded["p99_ms"] / idle["p99_ms"], 2),
        "download_failures": sum(isinstance(r, BaseException) for r in received),
    }


async def first_request_after(run: Running) -> dict[str, Any]:
    """One status request right after the load stops (the server may still be answering the
    load's last requests), and one a second later (target: < 100 ms)."""
    import httpx

    timings = {}
    async with httpx.AsyncClient(base_url=run.url, headers=run.headers, timeout=10) as http:
        for name, pause in (("at_once_ms", 0.0), ("one_second_later_ms", 1.0)):
            await asyncio.sleep(pause)
            started_at = time.perf_counter()
            response = await http.get(f"/v1/jobs/{run.job_id}")
            response.raise_for_status()
            timings[name] = round((time.perf_counter() - started_at) * 1000, 1)
    return timings


# --- SSE fan-out (500 streams on one job) -----------------------------------------------------
# Measured by benchmarks/sse_fanout.py (the event-stream owner's script). To report it here, add
# an async callable taking (Running, Client, clients, seconds) and returning a dict like the
# others:
EXTRA_SCENARIOS: dict[str, Callable[[Running, Client, int, float], Awaitable[dict[str, Any]]]] = {}


async def scenarios(
    run: Running, client: Client, clients: int, seconds: float, soak: float, warmup: float
) -> dict[str, Any]:
    job = f"/v1/jobs/{run.job_id}"
    if warmup:  # a freshly started service: threads, pools and caches fill here, not in a row
        await client.measure(run.url, run.headers, job, clients, warmup, "warm-up")
    measured = [
        await beside_healthz(run, client, "status", job, clients, seconds),
        await beside_healthz(
            run,
            client,
            "status If-None-Match (304)",
            job,
            clients,
            seconds,
            extra={"If-None-Match": run.etag},
        ),
        await beside_healthz(run, client, "list (50 jobs)", "/v1/jobs?limit=50", clients, seconds),
        await beside_healthz(
            run, client, "metric history (100 epochs)", f"{job}/metrics", clients, seconds
        ),
        await beside_slow_downloads(run, client, clients, seconds),
    ]
    for name, scenario in EXTRA_SCENARIOS.items():
        measured.append({"scenario": name, **await scenario(run, client, clients, seconds)})
    soaked = None
    if soak:
        soaked = await client.measure(
            run.url, run.headers, job, SOAK_CLIENTS, soak, f"status, {SOAK_CLIENTS} clients"
        )
    return {
        "scenarios": measured,
        "soak": soaked,
        "first_request_after_load": await first_request_after(run),
    }


def run_setup(setup: str, args: argparse.Namespace, client: Client) -> dict[str, Any]:
    import httpx

    with (
        tempfile.TemporaryDirectory() as tmp,
        started(setup, args.workers, Path(tmp), args.api_threads, dict(args.set)) as service,
    ):
        url, database_url, artifact_url = service
        key, job_id, model_id = seed(database_url, artifact_url)
        headers = {"Authorization": f"Bearer {key}"}
        etag = httpx.get(f"{url}/v1/jobs/{job_id}", headers=headers).headers["etag"]
        run = Running(setup, url, headers, job_id, model_id, etag)
        results = asyncio.run(
            scenarios(run, client, args.clients, args.seconds, args.soak, args.warmup)
        )
    api_processes = args.workers if setup == "postgres" else 1
    return {"setup": setup, "api_processes": api_processes, **results}


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
    parser.add_argument("--api-threads", type=int, help="TASS_API_THREADS (default: the service's)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=lambda text: tuple(text.split("=", 1)),
        metavar="TASS_NAME=VALUE",
        help="a setting for the API processes (repeatable)",
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="status polls first, not reported (seconds)"
    )
    parser.add_argument(
        "--soak", type=float, default=0.0, help=f"then status with {SOAK_CLIENTS} clients this long"
    )
    parser.add_argument(
        "--client", choices=["wrk", "python"], default="wrk" if wrk_available() else "python"
    )
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    client = Client(use_wrk=args.client == "wrk")
    report = {
        "client": args.client,
        "clients": args.clients,
        "seconds_per_scenario": args.seconds,
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "runs": [],
    }
    for setup in args.setup or ["embedded", "postgres"]:
        outcome = run_setup(setup, args, client)
        report["runs"].append(outcome)
        for row in outcome["scenarios"]:
            print(scenario_line(setup, row), flush=True)
        print(f"{setup}: soak {outcome['soak']}; after {outcome['first_request_after_load']}")
    write_json(args.out, report)


if __name__ == "__main__":
    main()
