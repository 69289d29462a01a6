"""Prediction uploads are read before the request takes a session, a body that trickles is
refused with 408, and predictions past the process's in-flight cap get 503 (no model runs
here: the uploads name a model that does not exist, or the serving process is a stub)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tass.core.objectstore import ObjectStore
from tests.support.seed import seed_trained_model

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


@pytest.fixture
def one_prediction_at_once(settings):
    """One prediction in flight per process (list it before `client`)."""
    settings.max_predictions_in_flight = 1


@pytest.mark.parametrize("migrated_url", ["sqlite"], indirect=True)
def test_predictions_past_the_in_flight_cap_get_503_with_retry_after(
    one_prediction_at_once, client, db, settings
):
    store = ObjectStore(settings.resolved_artifact_url)
    with db() as session:
        model_id = seed_trained_model(
            session, store, b"model bytes", tenant="acme", class_names=["a", "b"]
        ).id
        session.commit()
    entered, release = asyncio.Event(), asyncio.Event()

    async def serving(request: httpx.Request) -> httpx.Response:  # a busy serving process
        entered.set()
        await release.wait()
        return httpx.Response(200, json={"model_id": model_id, "predictions": []})

    async def two_predictions() -> tuple[int, httpx.Response, int]:
        client.app.state.serving_client = httpx.AsyncClient(
            transport=httpx.MockTransport(serving), base_url="http://serving"
        )
        path = f"/v1/models/{model_id}/predict"
        async with async_client(client) as http:
            first = asyncio.create_task(http.post(path, content=BODY))
            await asyncio.wait_for(entered.wait(), 10)
            try:  # without the cap it would wait in the busy serving process too
                second = await asyncio.wait_for(http.post(path, content=BODY), 10)
            finally:
                release.set()
            third = await http.post(path, content=BODY)
            return (await first).status_code, second, third.status_code

    first, second, third = asyncio.run(two_predictions())
    assert first == 200
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert "TASS_MAX_PREDICTIONS_IN_FLIGHT" in second.json()["detail"]
    assert third == 200, "the slot is given back"
