"""A cancel that races the sweep's decider never overwrites the final status the decider
committed (succeeded stays succeeded) and never writes a second final webhook event. The race
needs PostgreSQL: on SQLite every session begins IMMEDIATE, so the two cannot interleave."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from tass.core.models import Sweep, Webhook, WebhookOutbox
from tass.core.settings import Settings
from tass.core.sweeps import SweepStatus, cancel_sweep, create_sweep, get_sweep
from tass.core.webhooks import create_webhook, enqueue_sweep_event
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def ctx(tmp_path, pg_url) -> Iterator[WorkerContext]:
    with scratch_database(pg_url) as url:
        settings = Settings(data_dir=tmp_path, broker_url="memory://", database_url=url)
        upgrade(url)
        ctx = WorkerContext(settings)
        yield ctx
        ctx.engine.dispose()


def test_a_cancel_after_the_decider_finished_the_sweep_changes_nothing(ctx):
    with ctx.sessions.begin() as session:
        create_webhook(
            session,
            tenant="t",
            url="https://hooks.example/x",
            events=["sweep.succeeded", "sweep.cancelled"],
            description=None,
        )
        sweep_id = create_sweep(session, tenant="t", name="s", config={}, tags={}).id

    with ctx.sessions() as canceller:
        sweep = get_sweep(canceller, sweep_id, "t")
        assert sweep is not None and sweep.status == SweepStatus.RUNNING.value
        with ctx.sessions.begin() as decider:  # finishes the sweep between read and cancel
            finished = get_sweep(decider, sweep_id)
            assert finished is not None
            finished.status = SweepStatus.SUCCEEDED.value
            enqueue_sweep_event(decider, finished)
        assert cancel_sweep(canceller, sweep) is False
        assert sweep.status == SweepStatus.SUCCEEDED.value  # what a 409 reports
        canceller.commit()

    with ctx.sessions() as session:
        assert session.scalar(select(Sweep.status).where(Sweep.id == sweep_id)) == "succeeded"
        events = session.scalars(select(WebhookOutbox.event_type)).all()
        assert events == ["sweep.succeeded"]
        assert session.scalar(select(func.count()).select_from(Webhook)) == 1


def test_a_running_sweep_is_cancelled_with_one_final_event(ctx):
    with ctx.sessions.begin() as session:
        create_webhook(
            session,
            tenant="t",
            url="https://hooks.example/x",
            events=["sweep.cancelled"],
            description=None,
        )
        sweep_id = create_sweep(session, tenant="t", name="s", config={}, tags={}).id
    with ctx.sessions.begin() as session:
        sweep = get_sweep(session, sweep_id)
        assert sweep is not None
        assert cancel_sweep(session, sweep) is True
        assert sweep.status == "cancelled" and sweep.finished_at is not None
    with ctx.sessions() as session:
        assert session.scalars(select(WebhookOutbox.event_type)).all() == ["sweep.cancelled"]
