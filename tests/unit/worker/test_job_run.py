"""The skeleton that train and evaluate jobs share: a job that is no longer queued is left
alone, an error in the job fails its attempt with the message, and the workspace is removed
whatever happens."""

from __future__ import annotations

import pytest

from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.job_run import run_claimed
from tests.support.worker_jobs import job_row, place_here


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://", heartbeat_seconds=0.1)
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def queued_job(ctx: WorkerContext, status: str = "queued") -> str:
    with ctx.sessions.begin() as session:
        job = Job(type="train", tenant="t", status=status, queue="train", dataset={})
        session.add(job)
        session.flush()
        job_id = job.id
    place_here(ctx, job_id)
    return job_id


def test_an_error_fails_the_attempt_and_the_workspace_is_removed(ctx):
    job_id = queued_job(ctx)
    with run_claimed(ctx, job_id) as run:
        assert run is not None and run.job.id == job_id
        workdir = run.workdir
        (workdir / "partial.bin").write_bytes(b"half")
        assert job_row(ctx, job_id).status == "running"
        raise RuntimeError("the data ran out")
    job = job_row(ctx, job_id)
    assert job.status == "failed" and "RuntimeError: the data ran out" in (job.error or "")
    assert not workdir.exists()


def test_a_body_that_returns_leaves_the_job_running_and_removes_the_workspace(ctx):
    job_id = queued_job(ctx)
    with run_claimed(ctx, job_id) as run:
        assert run is not None
        workdir = run.workdir
    assert job_row(ctx, job_id).status == "running"  # ending it is the body's to do
    assert not workdir.exists()


def test_a_job_no_longer_queued_is_not_run(ctx):
    job_id = queued_job(ctx, status="cancelled")
    with run_claimed(ctx, job_id) as run:
        assert run is None
    assert job_row(ctx, job_id).status == "cancelled"
