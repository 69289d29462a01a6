"""Leases, heartbeats and deadlines run on the database's clock: hosts whose clocks are five
minutes off (a worker behind, the reaper ahead) change nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from tass.contract.statuses import JobStatus
from tass.core.clock import database_now
from tass.core.models import Job
from tass.core.reaper import reap
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tests.support.worker_jobs import claimed_job

SKEW = timedelta(minutes=5)


@pytest.fixture
def ctx(database_url: str | None, tmp_path) -> Iterator[WorkerContext]:
    yield from make_context(tmp_path, database_url)


def make_context(tmp_path, url: str | None) -> Iterator[WorkerContext]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        broker_url="memory://",
        heartbeat_timeout_seconds=30,
        default_max_runtime_seconds=120,
    )
    upgrade(settings.resolved_database_url)
    ctx = WorkerContext(settings)
    yield ctx
    ctx.engine.dispose()


def skew_host_clock(monkeypatch: pytest.MonkeyPatch, offset: timedelta) -> None:
    """Every `utcnow` the service's modules imported now reads the host clock `offset` off."""

    def skewed() -> datetime:
        return datetime.now(timezone.utc) + offset

    for name, module in list(sys.modules.items()):
        if name.startswith(("tass.core.", "tass.worker.")) and hasattr(module, "utcnow"):
            monkeypatch.setattr(module, "utcnow", skewed)


def status_of(ctx: WorkerContext, job_id: str) -> tuple[str, int]:
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        return job.status, job.attempt


def test_five_minutes_of_skew_between_hosts_reaps_nothing(ctx, monkeypatch):
    skew_host_clock(monkeypatch, -SKEW)  # the worker's host runs five minutes behind
    job = claimed_job(ctx)
    lease = Lease(ctx, job.id, job.attempt, deadline=job.started_at + timedelta(seconds=120))
    assert lease.renew()
    assert not lease.past_deadline()

    skew_host_clock(monkeypatch, SKEW)  # the reaper's host runs five minutes ahead
    assert reap(ctx.sessions, ctx.settings) == []
    assert status_of(ctx, job.id) == (JobStatus.RUNNING.value, 1)
    assert not lease.past_deadline()
    assert lease.renew()


def test_a_heartbeat_older_than_the_timeout_by_the_database_clock_is_reaped(ctx, monkeypatch):
    skew_host_clock(monkeypatch, SKEW)  # a host ahead must not hide a really lost worker
    job = claimed_job(ctx)
    with ctx.sessions.begin() as session:
        old = database_now(session) - timedelta(seconds=31)
        session.execute(update(Job).where(Job.id == job.id).values(last_heartbeat_at=old))
    requeued = reap(ctx.sessions, ctx.settings)
    assert [(r.job_id, r.attempt) for r in requeued] == [(job.id, 2)]
    assert status_of(ctx, job.id) == (JobStatus.QUEUED.value, 2)


def test_the_deadline_is_judged_on_the_database_clock(ctx, monkeypatch):
    skew_host_clock(monkeypatch, -SKEW)  # a host behind must not extend a job's runtime
    job = claimed_job(ctx)
    with ctx.sessions.begin() as session:
        started = database_now(session) - timedelta(seconds=121)
        session.execute(update(Job).where(Job.id == job.id).values(started_at=started))
    lease = Lease(ctx, job.id, job.attempt, deadline=started + timedelta(seconds=120))
    assert lease.past_deadline()
    assert reap(ctx.sessions, ctx.settings) == []
    assert status_of(ctx, job.id) == (JobStatus.FAILED.value, 1)
