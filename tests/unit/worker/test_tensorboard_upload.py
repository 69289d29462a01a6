"""A training attempt's TensorBoard folder is stored as its `tensorboard` artifact; a preempted
segment's too, and the segment that resumes the attempt adds to its files."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tass.core.job_queries import job_artifacts
from tass.core.models import Job
from tass.core.settings import Settings
from tass.core.tensorboard_files import tensorboard_artifacts
from tass.migrations.runner import upgrade
from tass.worker import tensorboard_upload, train_job
from tass.worker.context import WorkerContext
from tass.worker.tensorboard_upload import publish_tensorboard
from tests.support.worker_jobs import claimed_job, place_here


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://", heartbeat_seconds=60)
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def loaded(folder: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator


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


class StopAfter(threading.Event):
    """A stop flag that the trainer (which asks after every batch) sees set from its n-th
    question on: a preemption at a known step."""

    def __init__(self, batches: int) -> None:
        super().__init__()
        self.asked, self.batches = 0, batches

    def is_set(self) -> bool:
        self.asked += 1
        return self.asked >= self.batches


def run_with_stop(ctx: WorkerContext, job_id: str, stop: threading.Event, monkeypatch) -> None:
    @contextmanager
    def given_stop() -> Iterator[threading.Event]:
        yield stop

    monkeypatch.setattr(train_job, "stop_requests", given_stop)
    place_here(ctx, job_id)  # what the scheduler does before it sends the job here
    train_job.run_train_job(ctx, job_id)


def unzipped(ctx: WorkerContext, key: str, dest: Path) -> Path:
    data = b"".join(ctx.store.iter_range(key))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(dest)
    return dest


def test_a_preempted_segments_event_files_are_kept_and_the_resumed_one_adds_to_them(
    ctx, tmp_path, monkeypatch
):
    with ctx.sessions.begin() as session:
        job = Job(
            tenant="t",
            status="queued",
            type="train",
            queue="train",
            spec={"epochs": 2, "width": 0.125, "batch_size": 32, "jit_compile": "off"},
            dataset={"source": "synthetic", "num_examples": 128},
        )
        session.add(job)
        session.flush()
        job_id = job.id
    # 4 steps an epoch, asked after steps 1-3 and at the epoch's end: stops after epoch 1
    run_with_stop(ctx, job_id, StopAfter(4), monkeypatch)
    with ctx.sessions() as session:
        assert session.get(Job, job_id).status == "queued"  # handed back, same attempt
        [first] = tensorboard_artifacts(session, job_id)
    assert first.key == f"jobs/{job_id}/attempt-1/tensorboard.zip"
    preempted = loaded(unzipped(ctx, first.key, tmp_path / "first") / "train")
    assert [e.step for e in preempted.Tensors("epoch_loss")] == [0]

    run_with_stop(ctx, job_id, threading.Event(), monkeypatch)  # resumes, runs to the end
    with ctx.sessions() as session:
        assert session.get(Job, job_id).status == "succeeded"
        keys = [a.key for a in tensorboard_artifacts(session, job_id)]
    assert keys == [first.key, f"jobs/{job_id}/attempt-1/tensorboard-2.zip"]
    whole = loaded(unzipped(ctx, keys[-1], tmp_path / "whole") / "train")
    assert [e.step for e in whole.Tensors("epoch_loss")] == [0, 1]  # both segments' epochs
    steps = [e.step for e in whole.Tensors("batch_loss")]
    assert steps == sorted(set(steps)) == list(range(1, 9))  # the resumed segment counts on
