"""An epoch's metrics and checkpoint rows land exactly once, stamped by the database's clock:
a retry after a lost commit acknowledgement succeeds instead of failing the job on a duplicate
key, and a host whose clock is off does not reorder metrics against `finished_at`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select

import tass.core.models
from tass.core.clock import database_now
from tass.core.db import DatabaseUnavailable
from tass.core.job_results import ArtifactConflict, record_artifacts, stored_artifact
from tass.core.models import Artifact, Metric
from tass.core.objectstore import StoredObject
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.reporter import JobReporter
from tests.support.worker_jobs import claim_placed
from tests.unit.worker.test_attempt_fencing import epoch_end, queued_job


@pytest.fixture
def ctx(tmp_path, database_url) -> Iterator[WorkerContext]:
    settings = Settings(data_dir=tmp_path, broker_url="memory://", database_url=database_url)
    upgrade(settings.resolved_database_url)
    ctx = WorkerContext(settings)
    yield ctx
    ctx.engine.dispose()


def lose_the_next_commit_acknowledgement(ctx: WorkerContext) -> list[int]:
    """The next commit lands on the server, then its caller hears a lost connection (as when
    the network drops the answer to COMMIT)."""
    lost: list[int] = []

    def commit(connection: Any) -> None:
        if not lost:
            lost.append(1)
            connection.connection.dbapi_connection.commit()
            raise DatabaseUnavailable("COMMIT", {}, ConnectionError("connection lost"))

    event.listen(ctx.engine, "commit", commit)
    return lost


def test_an_epoch_end_retried_after_a_lost_commit_acknowledgement_keeps_the_job(ctx, tmp_path):
    job_id = queued_job(ctx)
    first = claim_placed(ctx, job_id)
    reporter = JobReporter(ctx, Lease(ctx, job_id, first.attempt), every_steps=5)
    lost = lose_the_next_commit_acknowledgement(ctx)

    assert reporter(epoch_end(tmp_path, 1, b"epoch one")) is True

    assert lost == [1]  # the first write committed and was retried
    with ctx.sessions() as session:
        keys = session.scalars(select(Artifact.key).where(Artifact.job_id == job_id)).all()
        metrics = session.scalar(select(func.count()).select_from(Metric))
    assert sorted(keys) == [
        f"jobs/{job_id}/attempt-1/checkpoints/epoch-0001/model.keras",
        f"jobs/{job_id}/attempt-1/checkpoints/epoch-0001/state.json",
    ]
    assert metrics == 1  # loss at epoch 1, once


def test_a_key_recorded_again_with_other_bytes_is_refused(ctx):
    job_id = queued_job(ctx)
    key = f"jobs/{job_id}/attempt-1/checkpoints/epoch-0001/model.keras"

    def row(sha: str) -> Artifact:
        stored = StoredObject(key=key, size=1, sha256=sha)
        return stored_artifact(stored, job_id=job_id, kind="checkpoint", epoch=1)

    with ctx.sessions.begin() as session:
        record_artifacts(session, [row("a" * 64)])
    with ctx.sessions.begin() as session:
        record_artifacts(session, [row("a" * 64)])  # the same object: nothing changes
    with pytest.raises(ArtifactConflict), ctx.sessions.begin() as session:
        record_artifacts(session, [row("b" * 64)])


def test_metric_times_come_from_the_database_clock(ctx, tmp_path, monkeypatch):
    class HostClockAnHourAhead(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(hours=1)

    job_id = queued_job(ctx)
    first = claim_placed(ctx, job_id)
    reporter = JobReporter(ctx, Lease(ctx, job_id, first.attempt), every_steps=5)
    monkeypatch.setattr(tass.core.models, "datetime", HostClockAnHourAhead)

    assert reporter(epoch_end(tmp_path, 1, b"epoch one"))

    with ctx.sessions() as session:
        at = session.scalar(select(Metric.at).where(Metric.job_id == job_id))
        now = database_now(session)
    assert at is not None
    assert abs(at.astimezone(timezone.utc) - now) < timedelta(minutes=5)
