"""Real everything: uvicorn + a Celery worker process + Redis (this run's own server) +
PostgreSQL + an S3 server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tass.migrations.runner import upgrade
from tests.support.processes import Service, free_port, start_api, start_worker, wait_http
from tests.support.s3 import moto_s3
from tests.support.seed import new_api_key


@pytest.fixture(scope="session")
def s3_env() -> Iterator[dict[str, str]]:
    with moto_s3("tass", access_key="integration") as env:
        yield env


@pytest.fixture(scope="session")
def service_env(
    pg_url: str, redis_url: str, s3_env: dict[str, str], tmp_path_factory
) -> dict[str, str]:
    upgrade(pg_url)
    data_dir = tmp_path_factory.mktemp("tass-data")
    return {
        **s3_env,
        "TASS_DATA_DIR": str(data_dir),
        "TASS_DATABASE_URL": pg_url,
        "TASS_BROKER_URL": redis_url,
        "TASS_ARTIFACT_URL": "s3://tass/artifacts",
        "TASS_DATA_ROOTS": str(data_dir),
        "TASS_HEARTBEAT_SECONDS": "1",
        "TASS_PRESIGN_DOWNLOADS": "true",
        "TASS_SSE_POLL_SECONDS": "0.2",
    }


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def api(service_env: dict[str, str], log_dir: Path) -> Iterator[tuple[Service, str]]:
    service, url = start_api(service_env, log_dir)
    yield service, url
    service.stop()


@pytest.fixture(scope="session")
def worker(service_env: dict[str, str], log_dir: Path) -> Iterator[Service]:
    service = start_worker(service_env, log_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def api_key(service_env: dict[str, str]) -> str:
    """A key for tenant `integration`, made the way `tass keys create` makes one."""
    return new_api_key(service_env["TASS_DATABASE_URL"], "integration")


@pytest.fixture
def http(api: tuple[Service, str], api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api[1], timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def http_module(api: tuple[Service, str], api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api[1], timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` on loopback (SQLite backend, local artifacts), started once."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(root / "artifacts")]
    server = Service("mlflow", command, {}, root, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", server, timeout=180)
        yield url
    finally:
        server.stop()
