"""A submission made while the broker is down is kept (jobs wait in the database), and a retry
with the same Idempotency-Key is the same job, sent to a worker once."""

from __future__ import annotations

from kombu.exceptions import OperationalError
from sqlalchemy import select

from tass.core.models import Job

SYNTHETIC = {"source": "synthetic", "num_examples": 100}
KEY = {"Idempotency-Key": "retry-after-outage"}


def test_a_submit_during_a_broker_outage_is_kept_and_a_retry_replays_it(
    client, db, monkeypatch, drain_tasks
):
    producer = client.app.state.producer

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(producer, "send_task", refuse)
    body = {"type": "train", "dataset": SYNTHETIC}
    first = client.post("/v1/jobs", json=body, headers=KEY)
    assert first.status_code == 202, first.text
    monkeypatch.undo()
    retried = client.post("/v1/jobs", json=body, headers=KEY)

    assert retried.status_code == 202 and retried.json()["id"] == first.json()["id"]
    assert retried.headers["idempotent-replayed"] == "true"
    assert [args for _, args in drain_tasks()] == [[first.json()["id"]]]
    with db() as session:
        statuses = session.scalars(select(Job.status).where(Job.tenant == "acme")).all()
    assert statuses == ["queued"]
