"""The status poll's read cache (core/change_feed.py) against the app as it runs: its own
engine, every write committed, as a worker, the reaper or `tass keys revoke` commit them.
A poll of an unchanged job runs no query; whatever changes a job or a key, from any process,
is seen by the next poll (SQLite) or within the notification's delivery (PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from tass.api.app import create_app
from tass.api.routers import jobs as jobs_router
from tass.contract.statuses import JobStatus
from tass.core.apikeys import create_key, revoke_key
from tass.core.change_feed import PostgresNotifications
from tass.core.db import make_session_factory
from tass.core.job_lifecycle import create_job
from tass.core.job_transitions import transition
from tass.core.settings import Settings
from tests.api.conftest import bearer
from tests.api.test_status_polling import counted_selects


@pytest.fixture
def live(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    """The app with its change feed listening; nothing rolled back."""
    application = create_app(settings)
    with TestClient(application) as client:
        feed = application.state.change_feed
        if isinstance(feed, PostgresNotifications):
            assert feed.wait_until_live(10), "the change feed never started listening"
        yield application, client


@pytest.fixture
def commit(engine: Engine) -> Callable[[Callable[[Any], Any]], Any]:
    """Run a change in a session of another engine and commit it (another process's write)."""
    other = make_session_factory(engine)

    def run(change: Callable[[Any], Any]) -> Any:
        with other.begin() as session:
            return change(session)

    return run


@pytest.fixture
def tenant_key(commit) -> tuple[str, str]:
    """A tenant of this test alone (the PostgreSQL database is shared) and its key."""
    tenant = f"cache-{uuid.uuid4().hex[:10]}"
    return tenant, commit(lambda session: create_key(session, tenant)[1])


def new_job(commit, tenant: str) -> str:
    return commit(
        lambda session: (
            create_job(
                session, job_type="train", tenant=tenant, queue="q", dataset={"source": "synthetic"}
            ).id
        )
    )


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def delay_for(engine: Engine) -> float:
    """How long a change may take to reach the cache: none on SQLite (every lookup reads
    the data version), a notification's delivery on PostgreSQL."""
    return 0.0 if engine.dialect.name == "sqlite" else 5.0


def test_an_unchanged_job_is_polled_without_a_query_and_a_change_elsewhere_is_seen(
    live, commit, tenant_key, engine
):
    app, client = live
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    path = f"/v1/jobs/{job_id}"
    first = client.get(path, headers=bearer(key))
    assert first.status_code == 200 and first.json()["status"] == "queued"

    with counted_selects(app.state.engine) as statements:
        again = client.get(path, headers=bearer(key))
    assert again.status_code == 200 and again.headers["etag"] == first.headers["etag"]
    assert statements == [], "an unchanged job and a known key are answered from memory"

    assert commit(lambda session: transition(session, job_id, JobStatus.RUNNING))

    def seen() -> bool:
        return client.get(path, headers=bearer(key)).json()["status"] == "running"

    assert eventually(seen, delay_for(engine)), "the poll kept answering the old status"


def test_a_list_renders_only_the_jobs_that_changed_and_shows_their_change(
    live, commit, tenant_key, engine
):
    app, client = live
    tenant, key = tenant_key
    job_ids = [new_job(commit, tenant) for _ in range(3)]
    first = client.get("/v1/jobs", headers=bearer(key)).json()
    assert [job["id"] for job in first["items"]] == job_ids[::-1]
    assert first["next_cursor"] is None
    polled = client.get(f"/v1/jobs/{job_ids[0]}", headers=bearer(key)).json()
    assert first["items"][-1] == polled, "a listed job reads as its status poll does"

    with counted_selects(app.state.engine) as statements:
        again = client.get("/v1/jobs", headers=bearer(key)).json()
    assert again == first
    assert len(statements) == 1, "unchanged jobs come from memory: only the page's ids are read"

    assert commit(lambda session: transition(session, job_ids[1], JobStatus.RUNNING))

    def seen() -> bool:
        page = client.get("/v1/jobs", headers=bearer(key)).json()
        return [job["status"] for job in page["items"]] == ["queued", "running", "queued"]

    assert eventually(seen, delay_for(engine)), "the list kept showing the old status"
    running = client.get("/v1/jobs?status=running", headers=bearer(key)).json()["items"]
    assert [job["id"] for job in running] == [job_ids[1]]
    pages = client.get("/v1/jobs?limit=2", headers=bearer(key)).json()
    rest = client.get(f"/v1/jobs?limit=2&cursor={pages['next_cursor']}", headers=bearer(key))
    assert [job["id"] for job in pages["items"] + rest.json()["items"]] == job_ids[::-1]


def test_a_revoked_key_is_refused_though_it_was_cached(live, commit, tenant_key, engine):
    _, client = live
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 200

    assert commit(lambda session: revoke_key(session, key.split("_")[1]))

    def refused() -> bool:
        return client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 401

    assert eventually(refused, delay_for(engine)), "a revoked key kept working from the cache"


def test_a_cached_job_stays_invisible_to_other_tenants(live, commit, tenant_key):
    _, client = live
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 200
    other = commit(lambda session: create_key(session, f"other-{uuid.uuid4().hex[:8]}")[1])

    response = client.get(f"/v1/jobs/{job_id}", headers=bearer(other))

    assert response.status_code == 404


def test_a_deleted_job_is_not_answered_from_the_cache(live, commit, tenant_key, engine):
    _, client = live
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 200

    commit(lambda session: session.execute(text("DELETE FROM jobs WHERE id = :id"), {"id": job_id}))

    def gone() -> bool:
        return client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).status_code == 404

    assert eventually(gone, delay_for(engine))


@pytest.mark.parametrize("migrated_url", ["postgresql"], indirect=True)
def test_after_losing_its_listener_the_cache_never_serves_what_it_missed(live, commit, tenant_key):
    app, client = live
    feed = app.state.change_feed
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    path = f"/v1/jobs/{job_id}"
    assert client.get(path, headers=bearer(key)).json()["status"] == "queued"
    epoch = feed.cache.epoch

    killed = commit(
        lambda session: session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'tass-change-feed' AND datname = current_database()"
            )
        ).all()
    )
    assert killed, "the change feed's connection was not found"
    assert eventually(lambda: feed.cache.epoch != epoch), "the loss went unnoticed"
    assert commit(lambda session: transition(session, job_id, JobStatus.RUNNING))

    assert client.get(path, headers=bearer(key)).json()["status"] == "running"
    assert feed.wait_until_live(10), "the change feed did not come back"
    assert commit(lambda session: transition(session, job_id, JobStatus.CANCELLING))
    assert eventually(
        lambda: client.get(path, headers=bearer(key)).json()["status"] == "cancelling"
    ), "changes after the reconnection were missed"


def test_a_crowd_polling_a_changed_job_waits_for_one_read(live, commit, tenant_key, monkeypatch):
    app, _ = live
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    render = jobs_router.render_job_in_own_session
    renders: list[str] = []

    def slow_render(*args):  # type: ignore[no-untyped-def]
        renders.append(job_id)
        time.sleep(0.1)  # long enough for the whole crowd to arrive while it runs
        return render(*args)

    monkeypatch.setattr(jobs_router, "render_job_in_own_session", slow_render)

    async def crowd() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            polls = [client.get(f"/v1/jobs/{job_id}", headers=bearer(key)) for _ in range(20)]
            return [response.status_code for response in await asyncio.gather(*polls)]

    assert asyncio.run(crowd()) == [200] * 20
    assert renders == [job_id], "each poller read the job itself"


def test_a_client_reads_its_own_cancel_at_once(live, commit, tenant_key, monkeypatch):
    app, client = live
    feed = app.state.change_feed
    if isinstance(feed, PostgresNotifications):  # notifications that take their time
        apply = feed.apply
        monkeypatch.setattr(feed, "apply", lambda payload: (time.sleep(0.5), apply(payload)))
    tenant, key = tenant_key
    job_id = new_job(commit, tenant)
    assert client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()["status"] == "queued"

    cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(key))
    assert cancelled.status_code == 202

    after = client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()["status"]
    assert after == cancelled.json()["status"] == "cancelled", "the poll answered from before"
