"""No webhook receiver can stall delivery for the others. A receiver that trickles its answer's
headers one byte at a time (each byte well inside httpx's per-read timeout) is cut off at the
attempt's deadline; while it trickles, the worker's delivery loop keeps sending other
webhooks' events, and one slow webhook's backlog takes at most PER_WEBHOOK slots. Real
delivery loop, real HTTP on loopback (127.0.0.1 only), SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from tass.contract.statuses import JobStatus
from tass.core.db import SessionFactory, make_engine, make_session_factory
from tass.core.models import WebhookDelivery
from tass.core.settings import Settings, get_settings
from tass.core.webhooks import AttemptResult, DueEvent, create_webhook
from tass.migrations.runner import upgrade
from tass.worker.webhook_delivery import PER_WEBHOOK, deliver_due, delivery_loop, send
from tests.support.scratch_pg import scratch_database
from tests.support.webhook_jobs import move, new_job
from tests.support.webhook_receiver import TRICKLE, Receiver, webhook_receiver

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "postgresql":
        with scratch_database(request.getfixturevalue("pg_url")) as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'hooks.db'}"


@pytest.fixture
def db(database_url, tmp_path, monkeypatch) -> Iterator[SessionFactory]:
    """A migrated database that the worker's delivery loop reads from its settings."""
    upgrade(database_url)
    for name, value in {
        "TASS_DATA_DIR": str(tmp_path),
        "TASS_DATABASE_URL": database_url,
        "TASS_BROKER_URL": "memory://",
        "TASS_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "TASS_WEBHOOK_POLL_SECONDS": "0.05",
        "TASS_WEBHOOK_TIMEOUT_SECONDS": "120",  # a trickle outlasts every test below
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()
    get_settings.cache_clear()


def hook(db: SessionFactory, receiver: Receiver, events: list[str]) -> str:
    with db.begin() as session:
        webhook = create_webhook(
            session, tenant="acme", url=receiver.url, events=events, description=None
        )
        return webhook.id


@pytest.fixture
def delivery_thread() -> Iterator[Callable[[], None]]:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start() -> None:
        thread = threading.Thread(target=delivery_loop, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()  # the receivers close first (their blocks end), which ends the trickles
    for thread in threads:
        thread.join(10)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_a_trickling_receiver_is_cut_off_at_the_attempts_deadline(db, tmp_path):
    settings = Settings(
        data_dir=tmp_path, webhook_allow_networks=["127.0.0.1/32"], webhook_timeout_seconds=1.5
    )
    with webhook_receiver([TRICKLE], trickle_seconds=0.3) as slow:
        webhook_id = hook(db, slow, ["job.started"])
        move(db, new_job(db), JobStatus.RUNNING)
        sender = threading.Thread(target=deliver_due, args=(db, settings), daemon=True)
        sender.start()
        sender.join(30)
        assert not sender.is_alive(), "the delivery never ended while bytes kept trickling"
        assert slow.trickling == 1  # cut off by the sender, not by the receiver
    with db() as session:
        attempt = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        ).one()
    assert attempt.error == "timed out" and attempt.status_code is None


def test_a_lookup_that_never_answers_ends_the_attempt_at_its_deadline(tmp_path):
    settings = Settings(data_dir=tmp_path, webhook_timeout_seconds=0.5)
    release = threading.Event()

    def silent_nameserver(host: str, port: int) -> list[str]:
        release.wait(20)  # a stub: nothing leaves the machine
        return ["93.184.215.14"]

    event = DueEvent(
        1,
        "w",
        "https://silent.example.com/in",
        "whsec_" + "A" * 44,
        "msg_1",
        "job.succeeded",
        {"type": "job.succeeded"},
        1,
    )
    outcome: list[AttemptResult] = []
    sender = threading.Thread(
        target=lambda: outcome.append(send(event, settings, silent_nameserver)), daemon=True
    )
    sender.start()
    sender.join(10)
    release.set()
    assert outcome, "the attempt waited for the nameserver"
    assert outcome[0].status_code is None
    assert "did not resolve within 0.5 s" in (outcome[0].error or "")


def test_other_webhooks_are_delivered_while_one_receiver_trickles(db, delivery_thread):
    with (
        webhook_receiver([], then=TRICKLE) as slow,
        webhook_receiver([]) as fast,
    ):
        hook(db, slow, ["job.started"])
        hook(db, fast, ["job.succeeded"])
        move(db, new_job(db), JobStatus.RUNNING)
        delivery_thread()
        wait_for(lambda: slow.trickling == 1, "the slow receiver was sent its event")

        move(db, new_job(db), JobStatus.RUNNING, JobStatus.SUCCEEDED)  # an event for each

        wait_for(lambda: len(fast.received) == 1, "the fast receiver got its event")
        assert slow.trickling >= 1  # the first attempt is still in flight


def test_one_webhooks_backlog_leaves_slots_for_the_others(db, delivery_thread):
    with (
        webhook_receiver([], then=TRICKLE) as slow,
        webhook_receiver([]) as fast,
    ):
        hook(db, slow, ["job.started"])
        for _ in range(20):  # 20 due events for the slow receiver, older than the fast one's
            move(db, new_job(db), JobStatus.RUNNING)
        hook(db, fast, ["job.started"])
        move(db, new_job(db), JobStatus.RUNNING)

        delivery_thread()

        wait_for(lambda: len(fast.received) == 1, "the fast receiver got its event")
        assert 1 <= slow.trickling <= PER_WEBHOOK
        time.sleep(0.5)  # more passes: the slow webhook still gets no more slots
        assert len(slow.received) <= PER_WEBHOOK
