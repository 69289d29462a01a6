"""Shared fixtures: real databases (a fresh PostgreSQL database per run on the machine's server,
SQLite files) and a Redis server of this run's own (the machine's Redis is never touched)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

if TYPE_CHECKING:
    from tests.support.servers import RedisServer

PG_ADMIN_URL = os.environ.get("TASS_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of its own for this test run, dropped afterwards."""
    name = f"tass_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test run's own on a free loopback port: no other run flushes or
    consumes its queues. Give each user its own db number (`redis_server.url(n)`)."""
    from tests.support.servers import RedisServer  # only runs that need a broker pay the import

    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """Database 0 of this run's Redis server."""
    return redis_server.url(0)


@pytest.fixture(autouse=True)
def _private_credentials(tmp_path_factory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's ~/.config/tass/credentials.json."""
    path = tmp_path_factory.mktemp("config") / "credentials.json"
    monkeypatch.setenv("TASS_CREDENTIALS_FILE", str(path))
