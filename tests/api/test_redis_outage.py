"""Redis down (a URL at a closed loopback port; the machine's Redis is never touched): status
reads keep working with the rate limit counted in process memory (logged, and back in the
shared storage once it answers), and submits and uploads are kept while the broker is down:
a job waits in the database for the scheduler, a dataset for the housekeeping that sends its
validation again."""

from __future__ import annotations

import logging

import pytest
from limits import parse, storage, strategies
from limits.errors import StorageError
from sqlalchemy import select

from tass.api.rate_counters import FallbackCounters
from tass.core.datasets import unstarted_validations
from tass.core.models import Job, UploadedDataset
from tass.core.settings import Settings

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The conftest settings with the rate-limit storage and the broker on a dead Redis."""
    return settings.model_copy(
        update={
            "rate_limit_storage_url": UNREACHABLE_REDIS,
            "broker_url": UNREACHABLE_REDIS,
            "rate_limit": "5/minute",
        }
    )


def seeded_job(db) -> str:
    with db() as session:
        job = Job(
            type="train", tenant="acme", status="queued", queue="train", dataset={"source": "x"}
        )
        session.add(job)
        session.commit()
        return job.id


def test_status_reads_work_while_the_rate_limit_storage_is_down(client, db, caplog):
    job_id = seeded_job(db)
    with caplog.at_level(logging.WARNING, logger="tass.api.rate_counters"):
        for _ in range(3):
            response = client.get(f"/v1/jobs/{job_id}")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "queued"
        assert client.get("/v1/jobs").status_code == 200
    assert any("unreachable" in record.getMessage() for record in caplog.records)
    assert client.app.state.rate_limiter.strategy.degraded


def test_the_limit_still_holds_per_process_while_the_storage_is_down(client):
    answers = [client.get("/v1/jobs").status_code for _ in range(7)]
    assert answers[:5] == [200] * 5
    assert answers[5:] == [429, 429]
    refused = client.get("/v1/jobs")
    assert int(refused.headers["Retry-After"]) >= 1


def test_login_throttle_works_while_the_storage_is_down(anonymous):
    response = anonymous.post("/dashboard/login", data={"api_key": "tass_nope_nope"})
    assert response.status_code == 401


def test_a_submit_while_the_broker_is_down_is_accepted_and_waits_in_the_database(client, db):
    response = client.post("/v1/jobs", json={"type": "train", "dataset": {"source": "synthetic"}})
    assert response.status_code == 202, response.text
    with db() as session:
        statuses = session.scalars(select(Job.status).where(Job.tenant == "acme")).all()
    assert statuses == ["queued"]  # the scheduler places it once a worker is alive


def test_an_upload_while_the_broker_is_down_is_kept_and_its_validation_sent_later(
    client, db, caplog
):
    from tests.support.archives import class_files, tar_gz

    with caplog.at_level(logging.WARNING, logger="tass.api.routers.datasets"):
        response = client.post(
            "/v1/datasets",
            params={"name": "pets"},
            content=tar_gz(class_files()),
            headers={"Content-Type": "application/gzip"},
        )
    assert response.status_code == 202, response.text
    dataset_id = response.json()["id"]
    assert "not sent (sent again later)" in caplog.text
    with db() as session:
        assert session.get(UploadedDataset, dataset_id) is not None
        # the workers' housekeeping looks for exactly these and sends them again
        assert unstarted_validations(session, older_than_seconds=0) == [dataset_id]
    assert [o.key for o in client.app.state.store.list("datasets/")] == [
        f"datasets/{dataset_id}/archive.tar.gz"
    ]


class FlakyStorage(storage.MemoryStorage):
    """Process memory that fails like an unreachable Redis while `down` is set."""

    down = False

    def incr(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StorageError(ConnectionError("connection refused"))
        return super().incr(*args, **kwargs)

    def get_sliding_window(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StorageError(ConnectionError("connection refused"))
        return super().get_sliding_window(*args, **kwargs)

    def acquire_sliding_window_entry(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.down:
            raise StorageError(ConnectionError("connection refused"))
        return super().acquire_sliding_window_entry(*args, **kwargs)


def test_counting_returns_to_the_shared_storage_when_it_answers_again(monkeypatch, caplog):
    monkeypatch.setattr(FallbackCounters, "RETRY_SECONDS", 0.0)
    shared = FlakyStorage()
    counters = FallbackCounters(strategies.SlidingWindowCounterRateLimiter, shared, "test")
    item = parse("100/minute")
    assert counters.hit(item, "k")
    shared.down = True
    with caplog.at_level(logging.WARNING, logger="tass.api.rate_counters"):
        assert counters.hit(item, "k")  # counted locally
        assert counters.degraded
        shared.down = False
        assert counters.hit(item, "k")  # back in the shared storage
    assert not counters.degraded
    assert "answers again" in caplog.records[-1].getMessage()
    shared_count = strategies.SlidingWindowCounterRateLimiter(shared).get_window_stats(item, "k")
    assert shared_count.remaining == 98  # the first and the last hit; the middle one was local
