"""Prediction uploads are read before the request takes a session, and a body that trickles
is refused with 408 (no model runs here: the uploads name a model that does not exist)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

PREDICT = "/v1/models/no-such-model/predict"
BODY = b'{"instances": ["aGVsbG8="]}'


@pytest.fixture
def two_session_slots(settings):
    """Two handler threads, so two open sessions at most (list it before `client`)."""
    settings.api_threads = 2


@pytest.fixture
def quick_body_deadline(settings):
    """A body must start within 0.5 s and then average 1 kB/s (list it before `client`)."""
    settings.body_timeout_seconds = 0.5
    settings.body_min_bytes_per_second = 1000


def async_client(client) -> httpx.AsyncClient:
    """One event loop for every request (TestClient gives each call a loop of its own)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client.app),
        base_url="http://testserver",
        headers=client.headers,
    )


async def held_body(release: asyncio.Event) -> AsyncIterator[bytes]:
    """A JSON body whose first bytes arrive now and the rest when `release` is set."""
    yield BODY[:5]
    await release.wait()
    yield BODY[5:]


# SQLite only: the slots do not depend on the database, and on PostgreSQL the app's test
# sessions share the test's one connection, which cannot serve concurrent requests
@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_slow_prediction_uploads_hold_no_session_slot(two_session_slots, client):
    async def listing_beside_slow_uploads() -> tuple[list[int], int, bool]:
        release = asyncio.Event()
        async with async_client(client) as http:
            uploads = [  # as many as the process has session slots
                asyncio.create_task(
                    http.post(
                        PREDICT,
                        content=held_body(release),
                        headers={"content-type": "application/json"},
                    )
                )
                for _ in range(2)
            ]
            await asyncio.sleep(0.3)
            listing = asyncio.create_task(http.get("/v1/jobs"))
            done, _ = await asyncio.wait([listing], timeout=5)
            answered_first = bool(done)
            release.set()
            statuses = [(await upload).status_code for upload in uploads]
            return statuses, (await listing).status_code, answered_first

    uploads, listing, answered_first = asyncio.run(listing_beside_slow_uploads())
    assert answered_first, "GET /v1/jobs waited for slow prediction uploads to finish"
    assert listing == 200
    assert uploads == [404, 404], "the uploads complete and then look up the model"


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_a_body_that_stops_arriving_is_408(quick_body_deadline, client):
    async def stalled_upload() -> tuple[httpx.Response, float]:
        release = asyncio.Event()
        async with async_client(client) as http:
            started = time.monotonic()
            try:  # a server without the deadline waits for the rest forever
                response = await asyncio.wait_for(
                    http.post(
                        PREDICT,
                        content=held_body(release),
                        headers={"content-type": "application/json"},
                    ),
                    timeout=10,
                )
            finally:
                release.set()
            return response, time.monotonic() - started

    response, waited = asyncio.run(stalled_upload())
    assert response.status_code == 408
    assert "too slowly" in response.json()["detail"]
    assert response.headers["connection"] == "close"
    assert waited < 10


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_a_body_that_keeps_arriving_is_read(quick_body_deadline, client):
    async def steady_upload() -> int:
        async def steady() -> AsyncIterator[bytes]:
            body = BODY.ljust(2000)  # JSON allows trailing whitespace
            for start in range(0, len(body), 100):  # 2,000 B/s for 1 s: past the 0.5 s the
                yield body[start : start + 100]  # body has to start, above the 1 kB/s rate
                await asyncio.sleep(0.05)

        async with async_client(client) as http:
            response = await http.post(
                PREDICT, content=steady(), headers={"content-type": "application/json"}
            )
            return response.status_code

    assert asyncio.run(steady_upload()) == 404  # the body was read; the model does not exist
