"""A submission whose broker send failed can be retried with the same Idempotency-Key."""

from __future__ import annotations

from kombu.exceptions import OperationalError
from sqlalchemy import select

from tass.core.models import Job

SYNTHETIC = {"source": "synthetic", "num_examples": 100}
KEY = {"Idempotency-Key": "retry-after-outage"}


def test_a_retry_after_a_failed_broker_send_makes_a_fresh_queued_job(
    client, db, monkeypatch, drain_tasks
):
    producer = client.app.state.producer
    send_task = producer.send_task

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(producer, "send_task", refuse)
    body = {"type": "train", "dataset": SYNTHETIC}
    failed = client.post("/v1/jobs", json=body, headers=KEY)
    assert failed.status_code == 503
    assert "Idempotency-Key" in failed.json()["detail"]

    monkeypatch.setattr(producer, "send_task", send_task)
    retried = client.post("/v1/jobs", json=body, headers=KEY)
    replayed = client.post("/v1/jobs", json=body, headers=KEY)

    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "queued"
    assert "idempotent-replayed" not in retried.headers
    assert replayed.status_code == 202 and replayed.json()["id"] == retried.json()["id"]
    assert replayed.headers["idempotent-replayed"] == "true"
    assert [args for _, args in drain_tasks()] == [[retried.json()["id"]]]
    with db() as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.tenant == "acme"))
        statuses = dict(rows.all())
    assert sorted(statuses.values()) == ["failed", "queued"], "the unsent job stays failed"
    assert statuses[retried.json()["id"]] == "queued"
