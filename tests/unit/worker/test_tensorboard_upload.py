"""A training attempt's TensorBoard folder is stored as its `tensorboard` artifact."""

from __future__ import annotations

import io
import zipfile

import pytest

from tass.core.job_queries import job_artifacts
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker import tensorboard_upload
from tass.worker.context import WorkerContext
from tass.worker.tensorboard_upload import publish_tensorboard
from tests.support.worker_jobs import claimed_job


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def test_the_folder_is_zipped_stored_and_recorded(ctx, tmp_path):
    job = claimed_job(ctx)
    logdir = tmp_path / "tb"
    (logdir / "train").mkdir(parents=True)
    (logdir / "train" / "events.out.tfevents.1.h.1.v2").write_bytes(b"scalars")
    publish_tensorboard(ctx, job, logdir)
    with ctx.sessions() as session:
        [artifact] = job_artifacts(session, job.id)
    assert artifact.kind == "tensorboard"
    assert artifact.key == f"jobs/{job.id}/attempt-{job.attempt}/tensorboard.zip"
    data = b"".join(ctx.store.iter_range(artifact.key))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("train/events.out.tfevents.1.h.1.v2") == b"scalars"


def test_an_oversized_or_empty_folder_is_not_kept(ctx, tmp_path, monkeypatch):
    job = claimed_job(ctx)
    publish_tensorboard(ctx, job, tmp_path / "missing")
    logdir = tmp_path / "tb"
    logdir.mkdir()
    (logdir / "events.out.tfevents.big").write_bytes(b"x" * 2048)
    monkeypatch.setattr(tensorboard_upload, "MAX_BYTES", 1024)
    publish_tensorboard(ctx, job, logdir)
    with ctx.sessions() as session:
        assert job_artifacts(session, job.id) == []
