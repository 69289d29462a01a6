"""Preemption: a job told to stop hands itself back as `preempted` on the same attempt, with the
checkpoint it wrote; the next run resumes from that step; the worker's main process passes a
SIGTERM on to its train children only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tass.core.job_lifecycle import request_cancel
from tass.core.models import Job, JobTransition
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.trainer.callbacks import StopCheckpoint
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.preemption import (
    hand_back,
    resume_point,
    stop_requests,
    tell_job_children_to_stop,
)
from tass.worker.train_job import fetch_checkpoint, latest_stored_checkpoint
from tests.support.worker_jobs import claim_placed


class Sent:
    """A TaskSender that records what it was asked to send."""

    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []

    def send_task(self, name: str, *, args: list[Any], queue: str, task_id: str) -> None:
        self.tasks.append({"name": name, "args": args, "queue": queue, "task_id": task_id})


@pytest.fixture
def ctx(tmp_path: Path, database_url: str | None) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, database_url=database_url, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings, node="node@test")


def new_job(ctx: WorkerContext, job_type: str = "train") -> str:
    with ctx.sessions.begin() as session:
        job = Job(type=job_type, tenant="t", status="queued", queue="train", dataset={})
        session.add(job)
        session.flush()
        return job.id


def stop_checkpoint(tmp_path: Path, global_step: int) -> StopCheckpoint:
    folder = tmp_path / f"step-{global_step:08d}"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"weights at the stop")
    (folder / "state.json").write_text('{"epoch": 1, "step_in_epoch": 7}')
    return StopCheckpoint(folder, epoch=1, step_in_epoch=7, global_step=global_step)


def history(ctx: WorkerContext, job_id: str) -> list[tuple[str, int, str | None, dict | None]]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(JobTransition).where(JobTransition.job_id == job_id).order_by(JobTransition.id)
        )
        return [(t.status, t.attempt, t.reason, t.details) for t in rows]


def test_a_stopped_job_goes_back_to_the_queue_on_the_same_attempt_and_resumes_there(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = new_job(ctx)
    job = claim_placed(ctx, job_id)
    assert job is not None
    assert hand_back(ctx, job, Lease(ctx, job_id, job.attempt), stop_checkpoint(tmp_path, 24))

    assert history(ctx, job_id) == [
        ("running", 1, "claimed", {"worker": ctx.worker_id}),
        ("preempted", 1, "worker told to stop", {"step": 24, "epoch": 1}),
        ("queued", 1, "preempted", {"resume_from_step": 24}),
    ]
    # queued again with no placement: its devices are free and the scheduler places it anew
    with ctx.sessions() as session:
        job_row = session.get(Job, job_id)
        assert job_row.status == "queued" and job_row.placement is None
    files = latest_stored_checkpoint(ctx, job_id)
    assert {Path(f.key).parent.name for f in files} == {"step-00000024"}
    assert resume_point(files, steps_per_epoch=17) == (1, 24)
    resumed = fetch_checkpoint(ctx, files, tmp_path / "resume")
    assert (resumed / "model.keras").read_bytes() == b"weights at the stop"

    again = claim_placed(ctx, job_id, resumed_from_epoch=1, resumed_from_step=24)
    assert again is not None and again.attempt == 1  # not counted as a failed attempt
    assert history(ctx, job_id)[-1][3] == {
        "worker": ctx.worker_id,
        "resumed_from_epoch": 1,
        "resumed_from_step": 24,
    }


def test_a_job_cancelled_before_its_stop_is_not_handed_back(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = new_job(ctx)
    job = claim_placed(ctx, job_id)
    assert job is not None
    with ctx.sessions.begin() as session:
        assert request_cancel(session, job_id)
    lease = Lease(ctx, job_id, job.attempt)
    assert not hand_back(ctx, job, lease, stop_checkpoint(tmp_path, 5))
    assert lease.lost.is_set()
    assert [row[0] for row in history(ctx, job_id)] == ["running", "cancelling"]
    assert latest_stored_checkpoint(ctx, job_id) == []


def test_an_epoch_checkpoint_resumes_at_its_epochs_steps() -> None:
    class File:
        epoch, key = 2, "jobs/j/attempt-1/checkpoints/epoch-0002/model.keras"

    assert resume_point([File()], steps_per_epoch=17) == (2, 34)  # type: ignore[list-item]
    assert resume_point([File()], steps_per_epoch=None) == (2, None)  # type: ignore[list-item]
    assert resume_point([], steps_per_epoch=17) == (0, 0)


def test_sigterm_during_a_job_sets_the_stop_flag_instead_of_killing() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_requests() as requested:
        assert not requested.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert requested.wait(5)
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.parametrize("database_url", [None])
def test_the_main_process_tells_only_its_train_children(ctx: WorkerContext) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )

    def child() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
        return process

    trainer, evaluator = child(), child()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    jobs = {
        "train": (new_job(ctx), f"node@test/{trainer.pid}"),
        "evaluate": (new_job(ctx, "evaluate"), f"node@test/{evaluator.pid}"),
        "exited": (new_job(ctx), f"node@test/{gone.pid}"),
        "other node": (new_job(ctx), f"node@elsewhere/{trainer.pid}"),
    }
    with ctx.sessions.begin() as session:
        for job_id, worker_id in jobs.values():
            row = session.get(Job, job_id)
            assert row is not None
            row.status, row.worker_id = "running", worker_id
    try:
        told = tell_job_children_to_stop(ctx.sessions, "node@test")
        assert told == {jobs["train"][0]}
        assert trainer.wait(10) == 7
        assert evaluator.poll() is None
    finally:
        for process in (trainer, evaluator):
            if process.poll() is None:
                process.kill()
                process.wait()
