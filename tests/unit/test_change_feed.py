"""The read cache's single flight never trades freshness for fewer reads: a request that
arrives after a change never gets an answer read before it. And the PostgreSQL listener:
a notification that arrives during its health query is applied (psycopg>=3.2.4), and a
psycopg that cannot listen safely disables the cache loudly, never quietly."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tass.core.change_feed import CHANNEL, ChangeFeed, PostgresNotifications, job_keys
from tests.support.scratch_pg import scratch_database


def live_feed() -> ChangeFeed:
    feed = ChangeFeed()
    feed.cache.clear(live=True)  # as a feed does once it sees every change
    return feed


def test_a_request_after_a_change_does_not_join_a_read_from_before_it():
    feed = live_feed()
    released = threading.Event()
    answers = iter(["before the change", "after the change"])

    def read() -> str:
        answer = next(answers)
        if answer == "before the change":
            released.wait(5)  # still running when the change lands
        return answer

    async def scenario() -> tuple[str | None, str | None]:
        early = asyncio.ensure_future(feed.read_through(("job", "j1"), read))
        await asyncio.sleep(0.05)
        feed.cache.drop(("job", "j1"))  # the job changed (a notification, a commit here)
        late = await feed.read_through(("job", "j1"), read)
        released.set()
        return await early, late

    early, late = asyncio.run(scenario())

    assert (early, late) == ("before the change", "after the change")
    assert feed.get(("job", "j1")) == "after the change", "the stale read was stored"


def test_requests_that_miss_together_share_one_read():
    feed = live_feed()
    reads: list[int] = []

    def read() -> str:
        reads.append(1)
        threading.Event().wait(0.05)
        return "status"

    async def crowd() -> list[str | None]:
        return list(await asyncio.gather(*(feed.read_through("k", read) for _ in range(10))))

    assert asyncio.run(crowd()) == ["status"] * 10
    assert len(reads) == 1


def test_a_change_made_here_drops_every_answer_at_once():
    feed = live_feed()
    feed.put(("job", "j1"), "queued", feed.epoch)
    assert feed.get(("job", "j1")) == "queued"

    feed.changed_here()

    assert feed.get(("job", "j1")) is None


@pytest.fixture
def pg_dsn(pg_url) -> Iterator[str]:
    """A database of the test's own: its notifications reach no other test's listener."""
    with scratch_database(pg_url) as url:
        yield url.replace("postgresql+psycopg://", "postgresql://", 1)


def notify(dsn: str, payload: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def eventually(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


class NotifiedDuringHealthQuery(PostgresNotifications):
    """Before its first health query, another session notifies and commits: the server sends
    the notification while the listener is between waits, so psycopg reads it as part of the
    health query's answer (the case psycopg 3.2.0-3.2.3 dropped)."""

    payload = "job:j1"

    def _health_check(self, connection: Any) -> None:
        if self.payload:
            payload, self.payload = self.payload, ""
            notify(self._dsn, payload)
            time.sleep(0.2)  # the notification is in the listener's socket before the query
        super()._health_check(connection)


@pytest.mark.postgres
def test_a_notification_that_arrives_during_the_health_query_drops_its_answer(pg_dsn):
    feed = NotifiedDuringHealthQuery(pg_dsn)
    try:
        assert feed.wait_until_live(10)
        feed.put(("job", "j1"), "queued", feed.epoch)
        feed.put(("job", "j2"), "queued", feed.epoch)
        assert eventually(lambda: feed.payload == "")  # the health query ran
        assert eventually(lambda: feed.get(("job", "j1")) is None), "the notification was lost"
        assert feed.cache.live and feed.state == "live"
    finally:
        feed.close()


@pytest.mark.postgres
def test_a_psycopg_that_drops_notifications_disables_the_cache_loudly(pg_dsn, monkeypatch, caplog):
    monkeypatch.setattr(psycopg, "__version__", "3.2.3")
    caplog.set_level(logging.ERROR, logger="tass.core.change_feed")
    feed = PostgresNotifications(pg_dsn)
    try:
        assert eventually(lambda: feed.problem is not None)
        assert not feed.wait_until_live(1.5)
        assert feed.state.startswith("disabled: psycopg 3.2.3 is older than 3.2.4")
        assert "read cache disabled" in caplog.text
        feed.put(("job", "j1"), "queued", feed.epoch)
        assert feed.get(("job", "j1")) is None
    finally:
        feed.close()


@pytest.mark.postgres
def test_a_psycopg_without_a_notifies_timeout_disables_the_cache_loudly(
    pg_dsn, monkeypatch, caplog
):
    def notifies(self: Any) -> Iterator[Any]:  # psycopg 3.1's signature
        return iter(())

    monkeypatch.setattr(psycopg.Connection, "notifies", notifies)
    caplog.set_level(logging.ERROR, logger="tass.core.change_feed")
    feed = PostgresNotifications(pg_dsn)
    try:
        assert eventually(lambda: feed.problem is not None)
        assert "has no notifies(timeout=)" in feed.state
        assert "read cache disabled" in caplog.text
        assert not feed.cache.live
    finally:
        feed.close()


@pytest.mark.postgres
def test_a_jobs_notification_drops_its_status_and_its_event_streams_mark(pg_dsn):
    feed = PostgresNotifications(pg_dsn)
    try:
        assert feed.wait_until_live(10)
        for key in (*job_keys("j1"), *job_keys("j2")):
            feed.put(key, "cached", feed.epoch)
        notify(pg_dsn, "job:j1")
        assert eventually(lambda: all(feed.get(key) is None for key in job_keys("j1")))
        assert all(feed.get(key) == "cached" for key in job_keys("j2"))
    finally:
        feed.close()
