"""Write-once, attempt-fenced storage: a stale attempt that wakes up after a retry took over
can upload only below its own prefix and can record nothing, so every recorded artifact keeps
the bytes its digest describes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import delete

from tass.contract.statuses import JobStatus
from tass.core.job_queries import job_artifacts, metric_rows
from tass.core.job_transitions import transition
from tass.core.models import Artifact, Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.reporter import JobReporter
from tass.worker.train_job import fetch_checkpoint, forget_lost_progress, latest_stored_checkpoint
from tests.support.worker_jobs import claim_placed


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def queued_job(ctx: WorkerContext) -> str:
    with ctx.sessions.begin() as session:
        job = Job(type="train", tenant="t", status="queued", queue="train", dataset={})
        session.add(job)
        session.flush()
        return job.id


def requeue(ctx: WorkerContext, job_id: str, attempt: int) -> None:
    """What the reaper does when attempt `attempt` misses its heartbeats."""
    with ctx.sessions.begin() as session:
        assert transition(
            session,
            job_id,
            JobStatus.QUEUED,
            attempt=attempt,
            values={"attempt": attempt + 1, "worker_id": None},
        )


def epoch_end(tmp_path: Path, epoch: int, weights: bytes) -> SimpleNamespace:
    folder = tmp_path / f"ckpt-{hashlib.sha256(weights).hexdigest()[:12]}"
    folder.mkdir()
    (folder / "model.keras").write_bytes(weights)
    (folder / "state.json").write_text(f'{{"epoch": {epoch}}}')
    return SimpleNamespace(
        kind="epoch",
        epoch=epoch,
        epochs=5,
        step=10,
        steps_per_epoch=10,
        images_per_sec=1.0,
        gflops_per_sec=None,
        eta_seconds=1.0,
        global_step=epoch * 10,
        metrics={"loss": 1.0 / epoch},
        checkpoint_path=str(folder),
    )


def stored_digest(ctx: WorkerContext, key: str) -> str:
    return hashlib.sha256(b"".join(ctx.store.iter_range(key))).hexdigest()


def test_a_stale_attempt_cannot_replace_or_record_checkpoints(ctx, tmp_path):
    job_id = queued_job(ctx)
    first = claim_placed(ctx, job_id)
    stale = JobReporter(ctx, Lease(ctx, job_id, first.attempt), every_steps=5)
    assert stale(epoch_end(tmp_path, 1, b"attempt one, epoch one"))

    requeue(ctx, job_id, first.attempt)  # attempt 1 paused past its lease
    second = claim_placed(ctx, job_id)
    fresh = JobReporter(ctx, Lease(ctx, job_id, second.attempt), every_steps=5)
    assert fresh(epoch_end(tmp_path, 2, b"attempt two, epoch two"))

    # attempt 1 wakes up and finishes the same epoch with other bytes
    assert not stale(epoch_end(tmp_path, 2, b"attempt one, epoch two"))

    with ctx.sessions() as session:
        recorded = job_artifacts(session, job_id)
    assert sorted((a.key, a.epoch) for a in recorded) == [
        (f"jobs/{job_id}/attempt-1/checkpoints/epoch-0001/model.keras", 1),
        (f"jobs/{job_id}/attempt-1/checkpoints/epoch-0001/state.json", 1),
        (f"jobs/{job_id}/attempt-2/checkpoints/epoch-0002/model.keras", 2),
        (f"jobs/{job_id}/attempt-2/checkpoints/epoch-0002/state.json", 2),
    ]
    for artifact in recorded:
        assert stored_digest(ctx, artifact.key) == artifact.sha256
    # the stale upload exists only as an unrecorded orphan
    assert ctx.store.exists(f"jobs/{job_id}/attempt-1/checkpoints/epoch-0002/model.keras")


def test_a_resume_fetches_every_file_of_the_newest_recorded_checkpoint(ctx, tmp_path):
    job_id = queued_job(ctx)
    first = claim_placed(ctx, job_id)
    reporter = JobReporter(ctx, Lease(ctx, job_id, first.attempt), every_steps=5)
    for epoch in (1, 2):
        assert reporter(epoch_end(tmp_path, epoch, f"weights {epoch}".encode()))

    files = latest_stored_checkpoint(ctx, job_id)
    assert {f.epoch for f in files} == {2}
    dest = fetch_checkpoint(ctx, files, tmp_path / "resume")
    assert (dest / "model.keras").read_bytes() == b"weights 2"
    assert (dest / "state.json").read_text() == '{"epoch": 2}'


def test_a_resumed_attempt_forgets_the_metrics_written_after_its_checkpoint(ctx, tmp_path):
    job_id = queued_job(ctx)
    first = claim_placed(ctx, job_id)
    lost = JobReporter(ctx, Lease(ctx, job_id, first.attempt), every_steps=5)
    assert lost(SimpleNamespace(**{**vars(epoch_end(tmp_path, 1, b"w")), "kind": "step"}))
    assert lost(epoch_end(tmp_path, 1, b"epoch one"))
    assert lost(SimpleNamespace(**{**vars(epoch_end(tmp_path, 2, b"x")), "kind": "step"}))
    assert lost(SimpleNamespace(**{**vars(epoch_end(tmp_path, 3, b"y")), "kind": "epoch"}))
    with ctx.sessions.begin() as session:  # epoch 3's checkpoint row never landed
        session.execute(delete(Artifact).where(Artifact.epoch == 3))
    requeue(ctx, job_id, first.attempt)

    second = claim_placed(ctx, job_id, resumed_from_epoch=1)
    forget_lost_progress(ctx, second, 1)
    with ctx.sessions() as session:
        assert [s for s, _ in metric_rows(session, job_id, kind="epoch")[0]] == [1]
        assert [s for s, _ in metric_rows(session, job_id, kind="step")[0]] == [10]
