"""Every engine a worker builds on PostgreSQL ends a transaction left open by a paused process
(idle_in_transaction_session_timeout, half the lease timeout): the job children's, the
housekeeping thread's, the webhook delivery thread's and the shutdown hand-back's."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from celery import Celery
from sqlalchemy import Engine, event

from tass.core.settings import get_settings
from tass.core.workers import WorkerInfo
from tass.migrations.runner import upgrade
from tass.worker import housekeeping, webhook_delivery
from tass.worker.context import WorkerContext
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres

HEARTBEAT_TIMEOUT = 8  # seconds: the engines end idle transactions after 4 s
EXPECTED = "4s"


@pytest.fixture
def timeouts(pg_url, tmp_path, monkeypatch) -> Iterator[list[str]]:
    """The worker's settings on a scratch database; yields the idle-in-transaction timeout
    of every database connection opened meanwhile (by any engine)."""
    seen: list[str] = []

    def record(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SHOW idle_in_transaction_session_timeout")
        seen.append(cursor.fetchone()[0])
        cursor.close()

    with scratch_database(pg_url) as url:
        upgrade(url)
        monkeypatch.setenv("TASS_DATABASE_URL", url)
        monkeypatch.setenv("TASS_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("TASS_BROKER_URL", "memory://")
        monkeypatch.setenv("TASS_HEARTBEAT_TIMEOUT_SECONDS", str(HEARTBEAT_TIMEOUT))
        get_settings.cache_clear()
        event.listen(Engine, "connect", record)
        try:
            yield seen
        finally:
            event.remove(Engine, "connect", record)
            get_settings.cache_clear()


def test_job_children_engine(timeouts):
    context = WorkerContext(get_settings())
    with context.sessions() as session:
        session.connection()
    context.engine.dispose()
    assert timeouts == [EXPECTED]


def test_housekeeping_engine(timeouts, monkeypatch):
    stop = threading.Event()
    stop.set()  # one pass, then the loop ends
    monkeypatch.setattr(housekeeping, "_stop", stop)
    info = WorkerInfo(name="w@test", host="test", pid=1, queues=["train"], device="cpu", gpus=[])
    housekeeping.housekeeping_loop(Celery(broker="memory://"), info)
    assert timeouts and set(timeouts) == {EXPECTED}


def test_shutdown_hand_back_engine(timeouts, monkeypatch):
    monkeypatch.setattr(housekeeping, "_stop", threading.Event())
    housekeeping._on_shutdown("w@test", how="Warm")
    assert timeouts and set(timeouts) == {EXPECTED}


class _OnePass(threading.Event):
    """Not set for the first check, set from then on: one delivery pass."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > 1


def test_webhook_delivery_engine(timeouts):
    webhook_delivery.delivery_loop(_OnePass())
    assert timeouts and set(timeouts) == {EXPECTED}
