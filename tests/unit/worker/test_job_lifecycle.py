"""The job lifecycle's single decisions: one deadline failure whoever notices it (the worker's
lease or the reaper), one dispatch decision (task, queue, task id), and failures that keep
their traceback in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import update

from tass.core.clock import database_now
from tass.core.job_lifecycle import dispatch
from tass.core.models import Job, JobTransition
from tass.core.queue import EVALUATE_TASK, TRAIN_TASK
from tass.core.reaper import reap
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.claim import fail
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tests.support.worker_jobs import claimed_job


@pytest.fixture
def ctx(database_url: str | None, tmp_path) -> Iterator[WorkerContext]:
    yield from make_context(tmp_path, database_url)


def make_context(tmp_path, url: str | None) -> Iterator[WorkerContext]:
    settings = Settings(
        data_dir=tmp_path, database_url=url, broker_url="memory://", default_max_runtime_seconds=60
    )
    upgrade(settings.resolved_database_url)
    ctx = WorkerContext(settings)
    yield ctx
    ctx.engine.dispose()


def running_job(ctx: WorkerContext, started_seconds_ago: float = 0) -> Job:
    """A claimed job, its first start backdated by `started_seconds_ago`."""
    claimed = claimed_job(ctx)
    job_id = claimed.id
    if started_seconds_ago:
        with ctx.sessions.begin() as session:
            started = database_now(session) - timedelta(seconds=started_seconds_ago)
            session.execute(update(Job).where(Job.id == job_id).values(started_at=started))
    return claimed


def final_state(ctx: WorkerContext, job_id: str) -> tuple[str, str | None, str | None]:
    """(status, error, reason of the last transition)."""
    with ctx.sessions() as session:
        job = session.get(Job, job_id)
        last = (
            session.query(JobTransition)
            .filter(JobTransition.job_id == job_id)
            .order_by(JobTransition.id.desc())
            .first()
        )
        return job.status, job.error, last.reason if last else None


def test_a_passed_deadline_fails_the_job_alike_from_the_lease_and_the_reaper(ctx):
    by_lease = running_job(ctx, started_seconds_ago=61)
    by_reaper = running_job(ctx, started_seconds_ago=61)

    Lease(ctx, by_lease.id, by_lease.attempt).expire()
    assert reap(ctx.sessions, ctx.settings) == []

    lease_outcome = final_state(ctx, by_lease.id)
    reaper_outcome = final_state(ctx, by_reaper.id)
    assert lease_outcome == reaper_outcome
    status, error, reason = lease_outcome
    assert (status, reason) == ("failed", "timeout")
    assert error == "timeout: ran longer than max_runtime_seconds (60s)"


def test_a_failed_job_keeps_the_message_and_logs_the_traceback(ctx, caplog):
    job = running_job(ctx)
    try:
        raise ValueError("the data has 3 channels, the model wants 1")
    except ValueError as exc:
        with caplog.at_level(logging.ERROR, logger="tass.worker.claim"):
            fail(ctx, job, exc)

    status, error, reason = final_state(ctx, job.id)
    assert (status, reason) == ("failed", "error")
    assert error == "ValueError: the data has 3 channels, the model wants 1"
    [record] = [r for r in caplog.records if r.name == "tass.worker.claim"]
    assert record.exc_info is not None
    assert "Traceback" in caplog.text and "test_job_lifecycle.py" in caplog.text


class Sender:
    """Records what would be sent to the broker; refuses the jobs in `refuse`."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.sent: list[dict[str, Any]] = []
        self.refuse = refuse

    def send_task(self, name: str, *, args: list[Any], queue: str, task_id: str) -> None:
        if args[0] in self.refuse:
            raise BrokerError("connection refused")
        self.sent.append({"task": name, "args": args, "queue": queue, "task_id": task_id})


def test_dispatch_names_the_task_by_job_type_the_queue_by_worker_and_the_id_by_attempt():
    sender = Sender()
    assert dispatch(sender, "j1", "train", 1, "celery@gpu-a")
    assert dispatch(sender, "j2", "evaluate", 3, "celery@cpu-b")
    assert sender.sent == [
        {"task": TRAIN_TASK, "args": ["j1"], "queue": "tass.node.celery@gpu-a", "task_id": "j1-1"},
        {
            "task": EVALUATE_TASK,
            "args": ["j2"],
            "queue": "tass.node.celery@cpu-b",
            "task_id": "j2-3",
        },
    ]


def test_a_refused_send_is_reported_not_raised(caplog):
    sender = Sender(refuse=frozenset({"j1"}))
    assert not dispatch(sender, "j1", "train", 2, "w")
    assert dispatch(sender, "j2", "train", 1, "w")
    assert [item["task_id"] for item in sender.sent] == ["j2-1"]
    assert "could not send job j1" in caplog.text
