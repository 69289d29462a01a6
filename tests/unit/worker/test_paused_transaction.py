"""A worker paused in the middle of a transaction (SIGSTOP, VM pause) holds its job's row lock;
PostgreSQL ends that transaction after half the lease timeout, so the reaper still hands the
job to the next attempt instead of skipping the locked row forever."""

from __future__ import annotations

import contextlib
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from tass.core.db import make_engine, make_session_factory
from tass.core.models import Job
from tass.core.reaper import reap
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tests.support.scratch_pg import scratch_database
from tests.support.worker_jobs import claim_placed

pytestmark = pytest.mark.postgres


def test_a_transaction_left_open_by_a_paused_worker_does_not_block_the_reaper(pg_url, tmp_path):
    with scratch_database(pg_url) as url:
        pause_in_a_transaction_then_reap(url, tmp_path)


def pause_in_a_transaction_then_reap(pg_url: str, tmp_path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=pg_url, broker_url="memory://", heartbeat_timeout_seconds=2
    )
    upgrade(pg_url)
    ctx = WorkerContext(settings)
    with ctx.sessions.begin() as session:
        job = Job(type="train", tenant="t", status="queued", queue="train", dataset={})
        session.add(job)
        session.flush()
        job_id = job.id
    assert claim_placed(ctx, job_id) is not None

    paused = ctx.engine.connect()  # the worker's own engine, as its child process uses it
    paused.begin()
    paused.execute(update(Job).where(Job.id == job_id).values(progress={"step": 1}))
    # ... and the process stops here, its row lock held

    reaper_engine = make_engine(pg_url)
    try:
        reaper = make_session_factory(reaper_engine)
        # the heartbeat goes stale after 2 s; the paused transaction still holds the row
        deadline = time.monotonic() + 15
        requeued = []
        while not requeued and time.monotonic() < deadline:
            requeued = reap(reaper, settings)
            time.sleep(0.2)
        assert [(r.job_id, r.attempt) for r in requeued] == [(job_id, 2)]
        # the worker wakes up to find its transaction ended and its write gone
        with pytest.raises(DBAPIError, match="idle-in-transaction timeout"):
            paused.execute(select(Job.progress).where(Job.id == job_id))
        with reaper() as session:
            assert session.get(Job, job_id).progress.get("step") is None
    finally:
        reaper_engine.dispose()
        with contextlib.suppress(DBAPIError):
            paused.close()
        ctx.engine.dispose()
