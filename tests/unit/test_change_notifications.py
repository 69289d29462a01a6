"""PostgreSQL change notifications coalesce, and a wedged listener cannot hold the server's
notification queue: an update that changes nothing, and a job's bare heartbeat within the
minute, send no notification (status, progress, metrics, key and login changes still do), and the
server drops the listening backend of a process that stopped reading its socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from tass.core.change_feed import CHANNEL
from tass.core.dashboard_sessions import end_session, start_session
from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import heartbeat
from tass.core.models import ApiKey, Job
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url) -> Iterator[tuple[str, str]]:
    """A migrated database of the test's own: (SQLAlchemy URL, libpq DSN)."""
    with scratch_database(pg_url) as url:
        upgrade(url)
        yield url, url.replace("postgresql+psycopg://", "postgresql://", 1)


def heard(listener: psycopg.Connection) -> list[str]:
    return [note.payload for note in listener.notifies(timeout=0.5)]


def test_bare_heartbeats_within_a_minute_and_no_op_updates_do_not_notify(pg):
    url, dsn = pg
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with factory.begin() as session:
            job = Job(type="train", tenant="t", status="running", queue="train", dataset={})
            session.add(job)
            session.flush()
            job_id = job.id
            session.add(ApiKey(prefix="tass_abc", secret_hash="0" * 64, tenant="t"))
        assert set(heard(listener)) == {f"job:{job_id}", "keys"}

        def update(sql: str) -> list[str]:
            with psycopg.connect(dsn, autocommit=True) as writer:
                writer.execute(sql, {"id": job_id})
            return heard(listener)

        at = "UPDATE jobs SET last_heartbeat_at = %(at)s::timestamptz WHERE id = %(id)s"
        assert update(at.replace("%(at)s", "'2026-12-07 10:00:01+00'")) == [f"job:{job_id}"]
        for second in ("10:00:06", "10:00:11", "10:00:59"):  # every heartbeat notified before
            assert update(at.replace("%(at)s", f"'2026-12-07 {second}+00'")) == []
        assert update(at.replace("%(at)s", "'2026-12-07 10:01:04+00'")) == [f"job:{job_id}"]
        assert update("UPDATE jobs SET status = status WHERE id = %(id)s") == []
        assert update("UPDATE api_keys SET name = name") == []

        with factory.begin() as session:  # a progress write renews the lease too: it notifies
            assert heartbeat(session, job_id, 1, progress={"epoch": 1})
        assert heard(listener) == [f"job:{job_id}"]
        assert update("UPDATE jobs SET status = 'succeeded' WHERE id = %(id)s") == [f"job:{job_id}"]
        assert update("UPDATE api_keys SET revoked_at = now()") == ["keys"]

        # a dashboard login and its logout: event streams opened with it must hear of it
        with factory.begin() as session:
            key_id = session.scalar(select(ApiKey.id))
            token = start_session(session, key_id, ttl_seconds=60)
        assert heard(listener) == ["keys"]
        with factory.begin() as session:
            assert end_session(session, token)
        assert heard(listener) == ["keys"]
    engine.dispose()


WEDGED_API = """
import sys, time
from tass.core import change_feed
change_feed.SERVER_USER_TIMEOUT_MS = 3000  # 30 s in production
feed = change_feed.PostgresNotifications(sys.argv[1])
assert feed.wait_until_live(20)
print("live", flush=True)
time.sleep(300)
"""


def listener_backends(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'tass-change-feed'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_server_drops_the_listener_of_a_wedged_process(pg, tmp_path: Path):
    _, dsn = pg
    script = tmp_path / "wedged_api.py"
    script.write_text(textwrap.dedent(WEDGED_API))
    child = subprocess.Popen([sys.executable, str(script), dsn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "live"
        assert listener_backends(dsn) == 1
        os.kill(child.pid, signal.SIGSTOP)  # wedged, still connected: nothing reads
        with psycopg.connect(dsn, autocommit=True) as writer:  # ~25 MB, past socket buffers
            writer.execute(
                f"SELECT pg_notify('{CHANNEL}', 'job:' || md5(g::text)) "
                "FROM generate_series(1, 400000) g"
            )
        deadline = time.monotonic() + 60
        while listener_backends(dsn) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert listener_backends(dsn) == 0, "the wedged listener still holds the queue"
    finally:
        child.kill()
        child.wait(10)
