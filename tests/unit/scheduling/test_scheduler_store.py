"""The scheduler on a real database: what one cycle reads, places, reserves, sends, asks to stop
and says about the jobs that wait; one active scheduler per deployment; devices a dead worker
held come back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tass.contract.statuses import JobStatus
from tass.core.clock import database_now
from tass.core.db import make_engine, make_session_factory
from tass.core.job_lifecycle import claim, create_job, finish, preempt
from tass.core.models import Job, SchedulerLease, TenantSettings, Worker
from tass.core.scheduler_store import (
    check_submission,
    deep_reason,
    lease_holder,
    store_positions,
)
from tass.core.scheduling import Priority, Resources
from tass.core.settings import Settings
from tass.core.workers import WorkerInfo, report_alive, report_stopped
from tass.migrations.runner import upgrade
from tass.worker.scheduler import Scheduler
from tests.support.scratch_pg import scratch_database


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def send_task(self, name: str, *, args: list[object], queue: str, task_id: str) -> None:
        self.sent.append((str(args[0]), queue, task_id))


@pytest.fixture(params=["sqlite", "postgresql"])
def factory(request: pytest.FixtureRequest, tmp_path) -> Iterator[sessionmaker[Session]]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'sched.db'}"
        else:
            url = stack.enter_context(scratch_database(request.getfixturevalue("pg_url")))
        upgrade(url)
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, broker_url="memory://", scheduler_lease_seconds=5)


def worker(factory, name: str, slots: int = 1, pool: str = "default", gpus: int = 0) -> None:
    info = WorkerInfo(
        name,
        "host",
        1,
        [],
        "gpu" if gpus else "cpu",
        [f"GPU {i}" for i in range(gpus)],
        pool=pool,
        slots=gpus or slots,
    )
    with factory.begin() as session:
        report_alive(session, info)


def submit(factory, tenant: str = "a", priority: Priority = Priority.NORMAL, **res) -> str:
    with factory.begin() as session:
        job = create_job(
            session,
            job_type="train",
            tenant=tenant,
            queue="train",
            dataset={},
            priority=int(priority),
            resources=res or None,
        )
        return job.id


def row(factory, job_id: str) -> Job:
    with factory() as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def start(factory, job_id: str) -> None:
    """What the worker does with the message: claim the job on the node it was placed on."""
    node = row(factory, job_id).placement["worker"]
    with factory.begin() as session:
        assert claim(session, job_id, f"{node}/42") is not None


def end(factory, job_id: str) -> None:
    with factory.begin() as session:
        assert finish(session, job_id, 1, JobStatus.SUCCEEDED)


def test_a_cycle_places_what_fits_reserves_its_devices_and_says_why_the_rest_waits(
    factory, settings
):
    worker(factory, "w1", slots=2)
    jobs = [submit(factory) for _ in range(3)]
    sender = Sender()
    Scheduler(sender, factory, settings, holder="s1").cycle()

    placed = [row(factory, j).placement for j in jobs[:2]]
    assert sorted(p["allocations"][0]["devices"][0] for p in placed) == [0, 1]
    assert sender.sent == [(j, "tass.node.w1", f"{j}-1") for j in jobs[:2]]
    waiting = row(factory, jobs[2])
    assert waiting.placement is None and waiting.queue_position == 1
    assert "slot" in waiting.pending_reason, waiting.pending_reason

    # nothing new: the next cycle sends nothing again; a job that ends frees its slot
    Scheduler(sender, factory, settings, holder="s1").cycle()
    assert len(sender.sent) == 2
    start(factory, jobs[0])
    end(factory, jobs[0])
    Scheduler(sender, factory, settings, holder="s1").cycle()
    assert sender.sent[-1][0] == jobs[2]
    assert row(factory, jobs[2]).queue_position is None


def test_every_waiting_job_shows_its_place_and_moves_up_when_the_head_starts(factory, settings):
    worker(factory, "w1", slots=1)
    jobs = [submit(factory) for _ in range(40)]
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    scheduler.cycle()
    assert [row(factory, j).queue_position for j in jobs[1:]] == list(range(1, 40))
    assert all("slot" in row(factory, j).pending_reason for j in jobs[1:])

    start(factory, jobs[0])
    end(factory, jobs[0])
    scheduler.cycle()  # the head starts: every job behind it moves up one place at once
    assert row(factory, jobs[1]).queue_position is None
    assert [row(factory, j).queue_position for j in jobs[2:]] == list(range(1, 39))


def test_only_the_head_of_a_deep_queue_gets_exact_places_the_rest_say_so(factory, settings):
    """Places beyond TASS_SCHEDULER_POSITIONS_SHOWN are not stored (a start at the head would
    rewrite every row behind it each cycle); those jobs say why, and get their exact place
    once they move up into the shown head."""
    settings = settings.model_copy(update={"scheduler_positions_shown": 5})
    worker(factory, "w1", slots=1)
    jobs = [submit(factory) for _ in range(9)]
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    scheduler.cycle()
    assert [row(factory, j).queue_position for j in jobs[1:6]] == [1, 2, 3, 4, 5]
    assert [row(factory, j).queue_position for j in jobs[6:]] == [None, None, None]
    assert row(factory, jobs[8]).pending_reason == deep_reason(5)
    assert "more than 5 jobs wait ahead of it" in deep_reason(5)

    start(factory, jobs[0])
    end(factory, jobs[0])
    scheduler.cycle()  # the head starts: the sixth waiting job moves into the shown head
    assert [row(factory, j).queue_position for j in jobs[2:7]] == [1, 2, 3, 4, 5]
    assert "slot" in row(factory, jobs[6]).pending_reason
    assert row(factory, jobs[7]).queue_position is None


def test_positions_are_written_only_to_jobs_still_queued(factory):
    ids = [submit(factory) for _ in range(3)]
    with factory.begin() as session:
        session.execute(
            update(Job).where(Job.id == ids[1]).values(status=JobStatus.CANCELLED.value)
        )
        store_positions(session, [(j, n, f"reason {n}") for n, j in enumerate(ids, start=1)])
    shown = [(row(factory, j).queue_position, row(factory, j).pending_reason) for j in ids]
    assert shown == [(1, "reason 1"), (None, None), (3, "reason 3")]


def test_a_tenant_behind_another_tenants_backlog_starts_as_soon_as_one_slot_frees(
    factory, settings
):
    worker(factory, "w1", slots=2)
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    a_jobs = [submit(factory, tenant="a") for _ in range(6)]
    scheduler.cycle()
    b_job = submit(factory, tenant="b")
    scheduler.cycle()
    assert row(factory, b_job).placement is None
    for job_id in a_jobs[:2]:
        start(factory, job_id)
    end(factory, a_jobs[0])
    scheduler.cycle()
    assert row(factory, b_job).placement is not None, "b goes before a's four waiting jobs"
    assert all(row(factory, j).placement is None for j in a_jobs[2:])


def test_urgent_preempts_a_low_job_which_is_placed_again_ahead_of_later_work(factory, settings):
    worker(factory, "w1", slots=1)
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    low = submit(factory, priority=Priority.LOW)
    scheduler.cycle()
    start(factory, low)
    later = submit(factory, priority=Priority.LOW)
    urgent = submit(factory, tenant="b", priority=Priority.URGENT)
    scheduler.cycle()
    assert row(factory, low).preempt_requested_at is not None
    assert row(factory, urgent).placement is None, "its slot frees once the victim stops"

    with factory.begin() as session:  # the victim checkpoints and hands itself back
        assert preempt(session, low, 1, step=7, epoch=0, reason="preempted")
    scheduler.cycle()
    assert row(factory, urgent).placement is not None
    start(factory, urgent)
    end(factory, urgent)
    scheduler.cycle()
    resumed = row(factory, low)
    assert resumed.placement is not None and resumed.attempt == 1
    assert resumed.preempt_requested_at is None
    assert row(factory, later).placement is None, "the preempted job kept its place"


def test_one_scheduler_acts_and_another_takes_over_when_its_lease_expires(factory, settings):
    worker(factory, "w1", slots=4)
    first, second = Sender(), Sender()
    s1 = Scheduler(first, factory, settings, holder="s1")
    s2 = Scheduler(second, factory, settings, holder="s2")
    submit(factory)
    s1.cycle()
    s2.cycle()
    assert len(first.sent) == 1 and second.sent == []
    with factory() as session:
        assert lease_holder(session) == "s1"

    with factory.begin() as session:  # s1 died: its lease runs out
        session.execute(
            update(SchedulerLease).values(expires_at=database_now(session) - timedelta(seconds=1))
        )
    submit(factory)
    s2.cycle()
    assert len(second.sent) == 1 and second.sent[0][1] == "tass.node.w1"
    with factory() as session:
        assert lease_holder(session) == "s2"


def test_a_placement_on_a_worker_that_died_comes_back_and_goes_elsewhere(factory, settings):
    worker(factory, "w1", slots=1)
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    job_id = submit(factory)
    scheduler.cycle()
    assert row(factory, job_id).placement["worker"] == "w1"
    with factory.begin() as session:
        report_stopped(session, "w1")
    worker(factory, "w2", slots=1)
    scheduler.cycle()  # the dead worker's placement is returned
    scheduler.cycle()  # and placed again
    assert row(factory, job_id).placement["worker"] == "w2"


def test_a_draining_worker_gets_nothing_new(factory, settings):
    worker(factory, "w1", slots=2)
    with factory.begin() as session:
        session.execute(update(Worker).where(Worker.name == "w1").values(draining=True))
    job_id = submit(factory)
    Scheduler(Sender(), factory, settings, holder="s1").cycle()
    job = row(factory, job_id)
    assert job.placement is None and job.pending_reason


def test_gpu_requests_are_checked_against_the_live_workers_of_their_pool(factory, settings):
    worker(factory, "g1", pool="a100", gpus=2)
    with factory() as session:
        too_big = check_submission(
            session, settings, "a", Resources(gpus=4, pool="a100"), Priority.NORMAL
        )
        fits = check_submission(
            session, settings, "a", Resources(gpus=2, pool="a100"), Priority.NORMAL
        )
        scaled_to_zero = check_submission(
            session, settings, "a", Resources(gpus=8, pool="h100"), Priority.NORMAL
        )
        urgent = check_submission(session, settings, "a", Resources(gpus=1), Priority.URGENT)
        cpu = check_submission(session, settings, "a", Resources(), Priority.NORMAL)
    assert cpu is not None and "GPU workers" in cpu[1]
    assert too_big is not None and too_big[0] == "resources" and "a100" in too_big[1]
    assert fits is None and scaled_to_zero is None
    assert urgent is not None and urgent[0] == "priority"
    with factory.begin() as session:
        session.add(TenantSettings(name="a", max_priority=int(Priority.URGENT)))
    with factory() as session:
        assert check_submission(session, settings, "a", Resources(gpus=1), Priority.URGENT) is None


def test_a_hung_process_of_a_requeued_job_keeps_its_slot_until_it_exits(factory, settings):
    worker(factory, "w1", slots=1)
    with factory.begin() as session:  # its one job process still runs a task no placement names
        session.execute(update(Worker).where(Worker.name == "w1").values(busy=1))
    scheduler = Scheduler(Sender(), factory, settings, holder="s1")
    job_id = submit(factory)
    scheduler.cycle()
    assert row(factory, job_id).placement is None
    with factory.begin() as session:  # the process exited
        session.execute(update(Worker).where(Worker.name == "w1").values(busy=0))
    scheduler.cycle()
    assert row(factory, job_id).placement["worker"] == "w1"
