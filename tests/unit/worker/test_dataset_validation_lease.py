"""A dataset validation has the jobs' protection (SQLite and PostgreSQL): a worker claims an
attempt and holds a lease; a message redelivered while that lease is live does nothing (an
OOM-killed child's message is redelivered at once, forever, by task_reject_on_worker_lost);
a validation whose worker died after it started is sent again by the reaper, and failed with
the reason once max_attempts were lost or its deadline passed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tass.core.clock import database_now
from tass.core.datasets import (
    claim_validation,
    reap_validations,
    record_validation,
    unstarted_validations,
)
from tass.core.models import UploadedDataset
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.dataset_validation import run_validate_dataset
from tests.support.archives import class_files, tar_gz
from tests.support.uploaded_datasets import read_dataset, uploaded


@pytest.fixture
def ctx(database_url: str | None, tmp_path: Path) -> Iterator[WorkerContext]:
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, broker_url="memory://", max_attempts=3
    )
    upgrade(settings.resolved_database_url)
    ctx = WorkerContext(settings)
    yield ctx
    ctx.engine.dispose()


def worker_dies_after_claiming(ctx: WorkerContext, dataset_id: str) -> int:
    """A worker takes up the validation and is killed (no result, no more heartbeats)."""
    with ctx.sessions.begin() as session:
        claim = claim_validation(session, dataset_id, ctx.settings)
    assert claim is not None
    return claim.attempt


def backdate(ctx: WorkerContext, dataset_id: str, lease: float = 0, started: float = 0) -> None:
    """Move the lease's last heartbeat and the first start `lease` / `started` seconds back."""
    with ctx.sessions.begin() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        assert dataset is not None and dataset.validation_started_at is not None
        now = database_now(session)
        if lease:
            dataset.validation_heartbeat_at = now - timedelta(seconds=lease)
        if started:
            dataset.validation_started_at = now - timedelta(seconds=started)


def reap(ctx: WorkerContext) -> list[str]:
    with ctx.sessions.begin() as session:
        return reap_validations(session, ctx.settings)


def test_a_redelivered_message_does_nothing_while_the_lease_is_live(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(2)))
    assert worker_dies_after_claiming(ctx, dataset_id) == 1
    run_validate_dataset(ctx, dataset_id)  # Celery's redelivery of the killed child's message
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "validating" and dataset.validation_attempts == 1
    assert reap(ctx) == []  # the lease is live: nothing to re-send yet
    with ctx.sessions() as session:
        assert unstarted_validations(session, 0) == []  # started: not a lost message


def test_a_validation_whose_worker_died_is_sent_again_and_completes(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(2)))
    worker_dies_after_claiming(ctx, dataset_id)
    backdate(ctx, dataset_id, lease=ctx.settings.heartbeat_timeout_seconds + 1)
    assert reap(ctx) == [dataset_id]
    assert reap(ctx) == []  # sent once: not again at every sweep while it waits in the queue
    with ctx.sessions() as session:  # unless the evaluate queue is found empty: a lost message
        assert unstarted_validations(session, 0) == [dataset_id]
    run_validate_dataset(ctx, dataset_id)  # the re-sent message
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "ready" and dataset.num_examples == 4
    assert dataset.validation_attempts == 2
    assert reap(ctx) == []


def test_a_validation_lost_on_every_attempt_fails_with_the_reason(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(2)))
    for attempt in range(1, 4):
        assert worker_dies_after_claiming(ctx, dataset_id) == attempt
        backdate(ctx, dataset_id, lease=ctx.settings.heartbeat_timeout_seconds + 1)
        assert reap(ctx) == ([dataset_id] if attempt < 3 else [])
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "failed" and dataset.validation_attempts == 3
    assert dataset.error == "validation did not finish: its worker was lost on all 3 attempts"
    run_validate_dataset(ctx, dataset_id)  # a late redelivery changes nothing
    assert read_dataset(ctx, dataset_id).validation_attempts == 3


def test_a_validation_past_its_deadline_fails_even_with_a_live_lease(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(2)))
    worker_dies_after_claiming(ctx, dataset_id)  # or hangs, heartbeating
    backdate(ctx, dataset_id, started=ctx.settings.dataset_validation_timeout_seconds + 1)
    assert reap(ctx) == []
    dataset = read_dataset(ctx, dataset_id)
    assert dataset.status == "failed"
    assert dataset.error == "timeout: validation ran longer than 3600s"


def test_a_stale_attempt_cannot_overwrite_a_later_one(ctx: WorkerContext) -> None:
    dataset_id, _ = uploaded(ctx, tar_gz(class_files(2)))
    worker_dies_after_claiming(ctx, dataset_id)
    backdate(ctx, dataset_id, lease=ctx.settings.heartbeat_timeout_seconds + 1)
    reap(ctx)
    run_validate_dataset(ctx, dataset_id)  # attempt 2 finishes: ready
    with ctx.sessions.begin() as session:  # attempt 1 comes back from the dead with an error
        record_validation(session, dataset_id, None, "late failure", attempt=1)
    assert read_dataset(ctx, dataset_id).status == "ready"
