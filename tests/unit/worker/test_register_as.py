"""A train job's `register_as`: its model becomes the name's next version in the transaction
that succeeds the job, and a job that does not succeed registers nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tass.contract.statuses import JobStatus
from tass.core.job_transitions import transition
from tass.core.models import Job
from tass.core.registry import get_registered, resolve_model_ref, versions_of
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.train_job import _publish
from tests.support.worker_jobs import claimed_job


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def running_job(ctx: WorkerContext, register_as: str | None) -> Job:
    return claimed_job(ctx, tenant="acme", dataset={"source": "synthetic"}, register_as=register_as)


def publish(ctx: WorkerContext, job: Job, tmp_path: Path) -> None:
    keras_file = tmp_path / f"{job.id}.keras"
    keras_file.write_bytes(b"keras " + job.id.encode())
    zipped = tmp_path / f"{job.id}.zip"
    zipped.write_bytes(b"zip " + job.id.encode())
    _publish(ctx, job, {"val_accuracy": 0.7}, ["cat", "dog"], keras_file, zipped)


def test_succeeded_jobs_become_the_next_versions_of_their_name(ctx, tmp_path):
    first, second, unnamed = (running_job(ctx, name) for name in ("cats", "cats", None))
    for job in (first, second, unnamed):
        publish(ctx, job, tmp_path)

    with ctx.sessions() as session:
        models = {j.id: session.get(Job, j.id).model_id for j in (first, second, unnamed)}
        registered = get_registered(session, "acme", "cats")
        versions = [
            (row.version, row.model.id, row.job.id) for row in versions_of(session, registered)
        ]
        assert versions == [(1, models[first.id], first.id), (2, models[second.id], second.id)]
        assert (
            resolve_model_ref(session, "cats:2", tenant="acme", scope="acme").id
            == models[second.id]
        )
        assert session.get(Job, unnamed.id).status == "succeeded"


def test_a_job_cancelled_before_it_publishes_registers_nothing(ctx, tmp_path):
    job = running_job(ctx, "cats")
    with ctx.sessions.begin() as session:
        assert transition(session, job.id, JobStatus.CANCELLING, reason="cancel requested")
        assert transition(session, job.id, JobStatus.CANCELLED, reason="stopped")
    publish(ctx, job, tmp_path)

    with ctx.sessions() as session:
        assert session.get(Job, job.id).status == "cancelled"
        assert get_registered(session, "acme", "cats") is None
