"""Cheap status reads: a fixed number of queries, ETag / If-None-Match, long-polls, reads that
never wait for the write lock, and downloads that stream with no session open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from tass.api.routers import jobs as jobs_router
from tass.contract.statuses import JobStatus
from tass.core.job_transitions import transition
from tests.api.test_models import PAYLOAD, stored_model  # noqa: F401 - fixture

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def submit(client) -> str:
    response = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC})
    assert response.status_code == 202, response.text
    return response.json()["id"]


def move(db, job_id: str, *statuses: JobStatus) -> None:
    with db() as session:
        for status in statuses:
            assert transition(session, job_id, status)
        session.commit()


@contextmanager
def counted_selects(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_status_and_list_cost_the_same_few_queries_however_many_jobs_and_transitions(
    client, db, engine
):
    first = submit(client)
    move(db, first, JobStatus.RUNNING)
    with counted_selects(engine) as one_job_status:
        assert client.get(f"/v1/jobs/{first}").status_code == 200
    with counted_selects(engine) as one_job_list:
        assert len(client.get("/v1/jobs").json()["items"]) == 1

    for _ in range(8):
        job_id = submit(client)
        move(db, job_id, JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.CANCELLED)
    with counted_selects(engine) as many_list:
        assert len(client.get("/v1/jobs").json()["items"]) == 9
    with counted_selects(engine) as busy_status:
        assert len(client.get(f"/v1/jobs/{job_id}").json()["transitions"]) == 4

    # the key, the job row(s), their transitions (a list first reads the page's ids): never
    # one query per job or transition (nothing is cached here: tests/api/test_read_cache.py)
    assert len(one_job_status) == len(busy_status) == 3, busy_status
    assert len(one_job_list) == len(many_list) == 4, many_list


def test_status_etag_answers_304_while_the_job_is_unchanged_and_200_once_it_changes(client, db):
    job_id = submit(client)
    first = client.get(f"/v1/jobs/{job_id}")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"

    unchanged = client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    other_list = client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": f'"x", {etag}'})
    assert other_list.status_code == 304

    move(db, job_id, JobStatus.RUNNING)
    changed = client.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json()["status"] == "running"
    assert changed.headers["etag"] != etag


def test_long_poll_answers_as_soon_as_the_job_changes(client, db, settings, monkeypatch):
    settings.long_poll_interval_seconds = 0.05
    job_id = submit(client)
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    reads = []
    read_job = jobs_router.render_job_in_own_session

    def read_after_a_change(*args):  # the job changes while the request waits
        reads.append(1)
        if len(reads) == 3:
            move(db, job_id, JobStatus.CANCELLED)
        return read_job(*args)

    monkeypatch.setattr(jobs_router, "render_job_in_own_session", read_after_a_change)
    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job_id}?wait=30", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.headers["etag"] != etag
    assert len(reads) == 3, "returns at the first read that sees the change"
    assert time.monotonic() - started < 10


def test_long_poll_on_an_unchanged_job_ends_with_304_after_the_wait(client, settings):
    settings.long_poll_interval_seconds = 0.05
    job_id = submit(client)
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]

    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job_id}?wait=0.5", headers={"If-None-Match": etag})
    elapsed = time.monotonic() - started

    assert response.status_code == 304
    assert 0.45 <= elapsed < 10


@pytest.fixture
def two_session_slots(settings):
    """An API process with two handler threads, so two open sessions at most (set before the
    app starts: list it before `client`)."""
    settings.api_threads = 2


# SQLite only: the slots do not depend on the database, and on PostgreSQL the app's test
# sessions share the test's one connection, which cannot serve concurrent requests
@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_waiting_long_polls_hold_no_session_slot(two_session_slots, client, settings):
    settings.long_poll_interval_seconds = 0.05
    job_id = submit(client)
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    path = f"/v1/jobs/{job_id}"

    async def status_beside_long_polls() -> tuple[list[int], int, float]:
        # one event loop for every request (TestClient gives each call a loop of its own)
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=client.headers
        ) as http:
            polls = [  # more long-polls than session slots
                asyncio.create_task(http.get(f"{path}?wait=4", headers={"If-None-Match": etag}))
                for _ in range(3)
            ]
            await asyncio.sleep(0.5)
            started = time.monotonic()
            status = await http.get(path)
            elapsed = time.monotonic() - started
            assert not any(poll.done() for poll in polls), "the long-polls are still waiting"
            return [(await poll).status_code for poll in polls], status.status_code, elapsed

    polled, status, elapsed = asyncio.run(status_beside_long_polls())
    assert polled == [304] * 3
    assert status == 200
    assert elapsed < 2, f"a plain status read waited {elapsed:.1f} s behind long-polls"


def test_long_poll_never_waits_on_a_final_job_and_is_capped_by_the_server(client, db, settings):
    settings.max_long_poll_seconds = 0.3
    job_id = submit(client)
    etag = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    started = time.monotonic()
    capped = client.get(f"/v1/jobs/{job_id}?wait=600", headers={"If-None-Match": etag})
    assert capped.status_code == 304 and time.monotonic() - started < 10

    move(db, job_id, JobStatus.CANCELLED)
    final = client.get(f"/v1/jobs/{job_id}").headers["etag"]
    settings.max_long_poll_seconds = 60
    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job_id}?wait=60", headers={"If-None-Match": final})
    assert response.status_code == 304
    assert time.monotonic() - started < 5, "a final job will not change: no waiting"
    assert client.get(f"/v1/jobs/{job_id}?wait=-1").status_code == 422


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_reads_answer_while_a_writer_holds_the_sqlite_write_lock(client, engine):
    """(PostgreSQL readers never wait for writers; SQLite's must not either.)"""
    job_id = submit(client)
    with engine.connect() as writer:
        writer.exec_driver_sql("COMMIT")  # end the BEGIN IMMEDIATE the engine sent
        writer.exec_driver_sql("BEGIN IMMEDIATE")  # what a worker's heartbeat write holds
        started = time.monotonic()
        responses = [
            client.get(f"/v1/jobs/{job_id}"),
            client.get("/v1/jobs"),
            client.get(f"/v1/jobs/{job_id}/metrics"),
        ]
        elapsed = time.monotonic() - started
        writer.exec_driver_sql("ROLLBACK")
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert elapsed < 5, "reads never queue behind the writer (busy_timeout is 30 s)"


def test_a_download_streams_with_no_database_session_open(client, stored_model, monkeypatch):  # noqa: F811
    open_while_streaming: list[int] = []
    in_transaction: set[Session] = set()

    def began(session, transaction, connection) -> None:  # type: ignore[no-untyped-def]
        in_transaction.add(session)

    store = client.app.state.store
    iter_range = store.iter_range

    def watched(*args, **kwargs):
        for chunk in iter_range(*args, **kwargs):
            open_while_streaming.append(sum(s.in_transaction() for s in in_transaction))
            yield chunk

    monkeypatch.setattr(store, "iter_range", watched)
    event.listen(Session, "after_begin", began)
    try:
        response = client.get(f"/v1/models/{stored_model}/download")
    finally:
        event.remove(Session, "after_begin", began)

    assert response.status_code == 200 and response.content == PAYLOAD
    assert in_transaction, "the handler did read through a session"
    assert open_while_streaming and set(open_while_streaming) == {0}
