"""The service under a team's load: 64 concurrent pollers, slow downloads, concurrent submits at
the quota, several API processes. Real uvicorn processes: the embedded setup (SQLite, one
process) and PostgreSQL + Redis (two processes, `tass api --workers 2`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tass.core.db import make_engine, make_session_factory
from tass.core.models import Job
from tass.core.objectstore import ObjectStore
from tass.migrations.runner import upgrade
from tass.operators.service import api_command
from tests.support.load import hammer, slow_download
from tests.support.processes import Service, free_port, service_env, start_api, wait_http
from tests.support.seed import new_api_key, seed_trained_model

pytestmark = pytest.mark.integration

CLIENTS = 64
SECONDS = 4.0
LOOSE_P99 = 5.0  # seconds: a shared, loaded 2-core machine; a frozen service takes 30 s or more
QUOTA = 10
POOL_FAILURES = ("QueuePool limit", "database is locked", "Traceback")
TRAIN = {"type": "train", "dataset": {"source": "synthetic", "num_examples": 100}}
# the queue nobody consumes: jobs submitted here stay queued
LOAD_SETTINGS = {"TASS_RATE_LIMIT": "1000000/minute", "TASS_TRAIN_QUEUE": "load-test"}


@dataclass
class Target:
    service: Service
    url: str
    database_url: str
    artifact_url: str

    def client(self, tenant: str) -> httpx.Client:
        key = new_api_key(self.database_url, tenant)
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Target]:
    data = tmp_path_factory.mktemp("embedded")
    database_url = f"sqlite:///{data / 'tass.db'}"
    upgrade(database_url)
    artifact_url = (data / "artifacts").resolve().as_uri()
    # 4 handler threads and a pool of 4 + 8 connections against 64 clients: the pool must
    # never deadlock against the thread pool (a connection held while waiting for a thread)
    env = service_env(
        {"TASS_DATA_DIR": str(data), "TASS_ARTIFACT_URL": artifact_url, "TASS_API_THREADS": "4"}
    )
    service, url = start_api({**env, **LOAD_SETTINGS}, tmp_path_factory.mktemp("embedded-log"))
    yield Target(service, url, database_url, artifact_url)
    service.stop()


@pytest.fixture(scope="module")
def two_processes(service_env: dict[str, str], tmp_path_factory) -> Iterator[Target]:
    """`tass api --workers 2` on PostgreSQL + Redis, with small pools (16 threads each)."""
    log_dir = tmp_path_factory.mktemp("two-processes-log")
    folder = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    env = {
        **service_env,
        **LOAD_SETTINGS,
        "TASS_API_THREADS": "16",
        "TASS_MAX_ACTIVE_JOBS_PER_TENANT": str(QUOTA),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    service = Service("api-workers", api_command("127.0.0.1", port, workers=2), env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", service)
    yield Target(service, url, service_env["TASS_DATABASE_URL"], service_env["TASS_ARTIFACT_URL"])
    service.stop()


def submit(http: httpx.Client) -> str:
    response = http.post("/v1/jobs", json=TRAIN)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def poll_under_load(target: Target) -> None:
    """64 clients poll status (plain and If-None-Match), list, metrics history and /healthz."""
    with target.client("load") as http:
        job_id = submit(http)
        headers = dict(http.headers)
    paths = [f"/v1/jobs/{job_id}", "/v1/jobs?limit=20", f"/v1/jobs/{job_id}/metrics", "/healthz"]
    result = asyncio.run(hammer(target.url, headers, paths, clients=CLIENTS, seconds=SECONDS))

    assert not result.errors, (result.summary(), target.service.log_tail())
    assert result.requests >= CLIENTS, result.summary()
    assert result.percentile(99) < LOOSE_P99, result.summary()
    log = target.service.log_tail(200_000)
    assert not [failure for failure in POOL_FAILURES if failure in log], log[-4000:]
    with httpx.Client(base_url=target.url, headers=headers, timeout=30) as http:
        started = time.monotonic()
        assert http.get(f"/v1/jobs/{job_id}").status_code == 200
        assert time.monotonic() - started < 1.0, "the service answers at once after the load"


def test_64_concurrent_pollers_on_the_embedded_service(embedded):
    poll_under_load(embedded)


@pytest.mark.postgres
def test_64_concurrent_pollers_on_two_api_processes_over_postgresql(two_processes):
    poll_under_load(two_processes)


async def _reads_and_writes_beside_slow_downloads(
    target: Target, headers: dict[str, str], model_id: str
) -> tuple[list[float], list[int], list[int]]:
    stop = asyncio.Event()
    path = f"/v1/models/{model_id}/download"
    readers = [
        asyncio.create_task(
            slow_download(target.url, headers, path, bytes_per_second=100_000, stop=stop)
        )
        for _ in range(3)
    ]
    await asyncio.sleep(1.0)  # the downloads are open and the server's sockets full
    timings, statuses = [], []
    async with httpx.AsyncClient(base_url=target.url, headers=headers, timeout=30) as client:
        for index in range(30):
            started = time.perf_counter()
            if index % 10 == 0:
                response = await client.post("/v1/jobs", json=TRAIN)  # a write
            else:
                response = await client.get("/v1/jobs?limit=5")
            timings.append(time.perf_counter() - started)
            statuses.append(response.status_code)
    stop.set()
    return timings, statuses, list(await asyncio.gather(*readers))


def test_slow_downloads_leave_reads_and_writes_fast_on_the_embedded_service(embedded):
    """Three clients read a 24 MB model at 100 KB/s (so the server's socket stays full) while
    another lists and submits jobs: every one of those answers at once."""
    payload = bytes(range(256)) * (24 * 4096)
    with make_session_factory(make_engine(embedded.database_url)).begin() as session:
        model = seed_trained_model(
            session, ObjectStore(embedded.artifact_url), payload, tenant="slow", name="big"
        )
        model_id = model.id
    with embedded.client("slow") as http:
        headers = dict(http.headers)

    timings, statuses, received = asyncio.run(
        _reads_and_writes_beside_slow_downloads(embedded, headers, model_id)
    )

    assert set(statuses) <= {200, 202}, statuses
    assert max(timings) < 2.0, timings
    assert all(0 < got < len(payload) for got in received), "the downloads were still open"


@pytest.mark.postgres
def test_50_concurrent_submits_never_overshoot_the_tenant_quota(two_processes):
    with two_processes.client("quota-race") as http:
        headers = dict(http.headers)

    async def submit_all() -> list[int]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(
            base_url=two_processes.url, headers=headers, timeout=60, limits=limits
        ) as client:
            responses = await asyncio.gather(
                *(client.post("/v1/jobs", json=TRAIN) for _ in range(50))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(submit_all())

    assert statuses.count(202) == QUOTA, statuses
    assert statuses.count(429) == 50 - QUOTA, statuses
    with make_session_factory(make_engine(two_processes.database_url))() as session:
        stored = session.scalar(
            select(func.count()).select_from(Job).where(Job.tenant == "quota-race")
        )
    assert stored == QUOTA


@pytest.mark.postgres
def test_metrics_count_the_requests_of_every_api_process(two_processes):
    def healthz_count() -> float:
        text = httpx.get(f"{two_processes.url}/metrics", timeout=30).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "tass_http_requests_total"
            and sample.labels.get("route") == "/healthz"
        )

    before = healthz_count()
    for _ in range(40):  # a new connection each: the kernel spreads them over both processes
        assert httpx.get(f"{two_processes.url}/healthz", timeout=30).status_code == 200
    assert healthz_count() - before == 40


@pytest.mark.postgres
def test_long_poll_answers_when_another_client_cancels_the_job(two_processes):
    with two_processes.client("long-poll") as http:
        # a pool no worker serves, in a class above other tests' jobs: the job waits, and once a
        # running scheduler (other tests' workers share this database) has given it its place
        # (ahead of every normal job) and its reason, nothing changes it
        body = {**TRAIN, "priority": "high", "resources": {"pool": "long-poll-nowhere"}}
        response = http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        first = http.get(f"/v1/jobs/{job_id}")
        deadline = time.monotonic() + 5
        while first.json()["pending_reason"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
            first = http.get(f"/v1/jobs/{job_id}")
        etag = first.headers["etag"]

        async def wait_and_cancel() -> tuple[httpx.Response, float]:
            async with httpx.AsyncClient(
                base_url=two_processes.url, headers=dict(http.headers), timeout=60
            ) as client:
                started = time.monotonic()
                waiting = asyncio.create_task(
                    client.get(f"/v1/jobs/{job_id}?wait=30", headers={"If-None-Match": etag})
                )
                await asyncio.sleep(1.0)
                assert not waiting.done(), "the long-poll waits while the job is unchanged"
                cancelled = await client.post(f"/v1/jobs/{job_id}/cancel")
                assert cancelled.status_code == 202
                response = await waiting
                return response, time.monotonic() - started

        response, elapsed = asyncio.run(wait_and_cancel())

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.headers["etag"] != etag
    assert elapsed < 15
