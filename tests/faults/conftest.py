"""Fault injection over real processes: uvicorn, Celery workers, Redis and PostgreSQL, with short
heartbeats and tiny models so that each scenario runs in seconds. The Redis and PostgreSQL these
tests stop and restart are their own (tests/support/servers.py), never the machine's."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tass.migrations.runner import upgrade
from tests.support.processes import Service, start_api, start_worker
from tests.support.seed import new_api_key
from tests.support.servers import PostgresCluster, RedisServer

FINAL = {"succeeded", "failed", "cancelled"}
# about 60 steps an epoch: long enough to kill a process mid-epoch, short enough to finish
SLOW = {
    "model": "alexnet-cifar",
    "jit_compile": "off",  # XLA compiles ~8 s per job on 2 cores; these tests are about faults
    "width": 0.25,
    "batch_size": 32,
    "learning_rate": 0.003,
    "validation_split": 0.1,
}
DATA = {"source": "synthetic", "num_examples": 2000}


@pytest.fixture(scope="session")
def fault_pg() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster the tests may stop and start."""
    cluster = PostgresCluster()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of the module's own that the tests may restart (empty)."""
    server = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault_env(
    fault_pg: PostgresCluster, fault_redis: RedisServer, tmp_path_factory
) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("faults")
    database = fault_pg.create_database(data_dir.name)
    upgrade(database)
    return {
        "TASS_DATA_DIR": str(data_dir),
        "TASS_DATABASE_URL": database,
        "TASS_BROKER_URL": fault_redis.url(),
        "TASS_ARTIFACT_URL": (data_dir / "artifacts").as_uri(),
        "TASS_HEARTBEAT_SECONDS": "0.5",
        "TASS_HEARTBEAT_TIMEOUT_SECONDS": "4",
        "TASS_REAPER_INTERVAL_SECONDS": "0.5",
        "TASS_MAX_ATTEMPTS": "3",
        "TASS_SSE_POLL_SECONDS": "0.2",
        "TASS_PROGRESS_EVERY_STEPS": "5",
        # a placed job unclaimed this long is sent again: longer than a job process takes to
        # start on a busy 2-core machine (a duplicate delivery costs a process restart)
        "TASS_REDISPATCH_AFTER_SECONDS": "90",
    }


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fault-logs")


@pytest.fixture(scope="module")
def api(fault_env: dict[str, str], logs: Path) -> Iterator[tuple[Service, str]]:
    service, url = start_api(fault_env, logs)
    yield service, url
    service.stop()


@pytest.fixture(scope="module")
def http(api: tuple[Service, str], fault_env: dict[str, str]) -> Iterator[httpx.Client]:
    key = new_api_key(fault_env["TASS_DATABASE_URL"], "faults")
    with httpx.Client(
        base_url=api[1], timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        yield client


@pytest.fixture
def workers(fault_env: dict[str, str], logs: Path) -> Iterator[Callable[..., Service]]:
    """Start named worker processes; all are stopped after the test."""
    started: list[Service] = []

    def start(name: str = "w1", **env: str) -> Service:
        service = start_worker({**fault_env, **env}, logs, name=f"{name}-{len(started)}")
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def submit(http: httpx.Client, epochs: int, **spec: object) -> str:
    response = http.post(
        "/v1/jobs",
        json={"type": "train", "spec": {**SLOW, "epochs": epochs, **spec}, "dataset": DATA},
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_until(
    http: httpx.Client,
    job_id: str,
    predicate: Callable[[dict], bool],
    timeout: float,
    *services: Service,
    what: str = "condition",
) -> dict:
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if predicate(job):
            return job
        time.sleep(0.1)
    logs = "\n".join(f"--- {s.name}\n{s.log_tail(6000)}" for s in services)
    raise AssertionError(f"job {job_id}: {what} not reached: {job}\n{logs}")


def child_pid(job: dict) -> int:
    """The pid of the worker child process running the job (`<node>/<pid>`)."""
    return int(job["worker"].rsplit("/", 1)[1])


def kill9(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)


def epoch_rows(http: httpx.Client, job_id: str) -> list[int]:
    items = http.get(f"/v1/jobs/{job_id}/metrics", params={"kind": "epoch"}).json()["items"]
    return [row["step"] for row in items]
