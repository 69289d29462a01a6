"""Webhook delivery end to end on loopback (SQLite and PostgreSQL): a receiver verifies every
signature with the standardwebhooks library; a 500 and a timeout are retried, the first retry
within 10 s; one job's events arrive in order; an attempt lost with its worker is sent again;
an address outside TASS_WEBHOOK_ALLOW_NETWORKS gets nothing. Every packet stays on 127.0.0.0/8."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook as Verifier

from tass.contract.statuses import JobStatus
from tass.core.models import WebhookOutbox, utcnow
from tass.core.webhooks import claim_due, prune_settled
from tass.worker.webhook_delivery import deliver_due
from tests.support.webhook_jobs import move, new_job
from tests.support.webhook_receiver import STALL, webhook_receiver

pytestmark = pytest.mark.integration


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"no lookup expected, asked for {host}")


@pytest.fixture
def loopback(settings):
    settings.webhook_allow_networks = ["127.0.0.1/32"]
    return settings


def register(client, url: str, events: list[str]) -> dict:
    response = client.post("/v1/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    return response.json()


def deliver_until(db, settings, done, seconds: float = 20.0) -> None:
    """Run delivery passes, as a worker's delivery thread does, until done() or the deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "delivery did not finish in time"
        deliver_due(db, settings, resolver=no_dns)
        time.sleep(0.05)


def attempts(client, webhook_id: str) -> list[dict]:
    return client.get(f"/v1/webhooks/{webhook_id}/deliveries").json()["items"][::-1]


def test_signed_event_is_retried_after_a_500_within_10_seconds(client, db, loopback):
    with webhook_receiver([500]) as receiver:
        hook = register(client, receiver.url, ["job.succeeded"])
        job_id = new_job(db)
        move(db, job_id, JobStatus.RUNNING, JobStatus.SUCCEEDED)
        deliver_until(db, loopback, lambda: len(receiver.received) == 2)
        first, second = receiver.received
    verifier = Verifier(hook["secret"])
    for request in (first, second):
        event = verifier.verify(request.body, request.headers)
        assert event["type"] == "job.succeeded"
        assert event["data"]["id"] == job_id and event["data"]["status"] == "succeeded"
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # one event, twice
    log = attempts(client, hook["id"])
    assert [(a["attempt"], a["status_code"], a["error"]) for a in log] == [
        (1, 500, "HTTP 500"),
        (2, 200, None),
    ]
    assert all(a["latency_ms"] is not None for a in log)
    gap = (_time(log[1]["at"]) - _time(log[0]["at"])).total_seconds()
    assert 0 < gap < 10  # the default first retry: 2.5-5 s after the failure


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_timeout_is_retried(client, db, loopback):
    loopback.webhook_timeout_seconds = 0.5
    loopback.webhook_first_retry_seconds = 0.2
    with webhook_receiver([STALL], stall_seconds=2.0) as receiver:
        hook = register(client, receiver.url, ["job.failed"])
        move(db, new_job(db), JobStatus.FAILED)
        deliver_until(db, loopback, lambda: len(receiver.received) == 2)
    log = attempts(client, hook["id"])
    assert [(a["status_code"], a["error"]) for a in log] == [(None, "timed out"), (200, None)]


def test_one_jobs_events_arrive_in_order_behind_a_failing_one(client, db, loopback):
    loopback.webhook_first_retry_seconds = 0.2
    with webhook_receiver([500, 500]) as receiver:
        hook = register(client, receiver.url, ["job.started", "job.succeeded"])
        job_id = new_job(db)
        move(db, job_id, JobStatus.RUNNING, JobStatus.SUCCEEDED)
        deliver_until(db, loopback, lambda: len(receiver.received) == 4)
    verifier = Verifier(hook["secret"])
    seen = [(verifier.verify(r.body, r.headers)["type"], r.answered) for r in receiver.received]
    assert seen == [
        ("job.started", 500),
        ("job.started", 500),
        ("job.started", 200),
        ("job.succeeded", 200),
    ]


def test_an_attempt_lost_with_its_worker_is_sent_again(client, db, loopback):
    with webhook_receiver([]) as receiver:
        hook = register(client, receiver.url, ["job.cancelled"])
        move(db, new_job(db), JobStatus.CANCELLED)
        with db.begin() as session:  # a worker claims the event, then dies before sending
            (lost,) = claim_due(session, limit=10, lease_seconds=1.0)
        deliver_due(db, loopback, resolver=no_dns)
        assert receiver.received == []  # the lease still holds it
        deliver_until(db, loopback, lambda: len(receiver.received) == 1)
    event = Verifier(hook["secret"]).verify(receiver.received[0].body, receiver.received[0].headers)
    assert receiver.received[0].headers["webhook-id"] == lost.event_id
    assert event["type"] == "job.cancelled"
    assert [a["attempt"] for a in attempts(client, hook["id"])] == [2]


def test_an_address_outside_the_allowed_networks_gets_nothing(client, db, loopback):
    loopback.webhook_allow_networks = ["127.0.0.0/8"]
    with webhook_receiver([], host="127.0.0.2") as receiver:
        hook = register(client, receiver.url, ["job.succeeded"])
        loopback.webhook_allow_networks = ["127.0.0.1/32"]  # narrowed after registration
        move(db, new_job(db), JobStatus.RUNNING, JobStatus.SUCCEEDED)
        deliver_due(db, loopback, resolver=no_dns)
        time.sleep(0.2)
        assert receiver.received == []
    (attempt,) = attempts(client, hook["id"])
    assert attempt["status_code"] is None and attempt["error"].startswith("refused: 127.0.0.2")
    refused = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["job.failed"]})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "url"]
    assert "127.0.0.2" in refused.json()["detail"][0]["msg"]


def test_an_event_is_given_up_after_the_retry_period(client, db, loopback):
    loopback.webhook_first_retry_seconds = 0.1
    loopback.webhook_retry_for_seconds = 1.0
    with webhook_receiver([500] * 1000) as receiver:
        hook = register(client, receiver.url, ["job.failed"])
        move(db, new_job(db), JobStatus.FAILED)
        deliver_until(db, loopback, lambda: outbox_status(db) == "failed")
        sent = len(receiver.received)
        time.sleep(0.3)
        deliver_due(db, loopback, resolver=no_dns)
        assert len(receiver.received) == sent  # no attempt after giving up
    assert 2 <= sent <= 10
    assert len(attempts(client, hook["id"])) == sent


def outbox_status(db) -> str:
    with db() as session:
        return session.scalar(select(WebhookOutbox.status))


def test_settled_events_are_pruned_after_the_keep_period(client, db, loopback):
    with webhook_receiver([]) as receiver:
        hook = register(client, receiver.url, ["job.started", "job.succeeded"])
        job_id = new_job(db)
        move(db, job_id, JobStatus.RUNNING)
        deliver_until(db, loopback, lambda: len(receiver.received) == 1)
    move(db, job_id, JobStatus.SUCCEEDED)  # pending: never pruned, however old
    with db.begin() as session:
        assert prune_settled(session, keep_seconds=3600) == 0
    with db.begin() as session:
        session.execute(update(WebhookOutbox).values(created_at=utcnow() - timedelta(days=31)))
    with db.begin() as session:
        assert prune_settled(session, keep_seconds=30 * 86400) == 1
    assert attempts(client, hook["id"]) == []
    assert outbox_status(db) == "pending"
