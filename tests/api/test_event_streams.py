"""GET /v1/jobs/{id}/events under load: caps per key and per process, a bounded lifetime with
Last-Event-ID resume, revoked keys, and one shared poller per job.

These run on SQLite only: many streams poll from the app's threads at once, and the PostgreSQL
fixture shares one rolled-back connection between the test and the app (the stream's queries
run on PostgreSQL in test_jobs.py's event stream test)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from tass.api.app import create_app
from tass.api.streams import StreamCursor, events_since
from tass.contract.statuses import JobStatus
from tass.core.apikeys import create_key, revoke_key
from tass.core.change_feed import ChangeFeed
from tass.core.job_events import JobEventState
from tass.core.job_results import upsert_metrics
from tass.core.job_transitions import transition
from tass.core.models import Job
from tass.core.settings import Settings
from tests.api.conftest import bearer

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


@pytest.fixture(scope="session")
def migrated_url(tmp_path_factory) -> str:
    from tass.migrations.runner import upgrade

    url = f"sqlite:///{tmp_path_factory.mktemp('streams-db') / 'template.db'}"
    upgrade(url)
    return url


@pytest.fixture
def serve(settings: Settings, db: sessionmaker[Session]) -> Iterator[Callable[..., TestClient]]:
    """Start the app with some settings changed; its requests share one event loop."""
    with ExitStack() as stack:

        def start(**overrides: object) -> TestClient:
            application = create_app(settings.model_copy(update=overrides))
            client = stack.enter_context(TestClient(application))
            application.state.session_factory = db
            return client

        yield start


def submit(client: TestClient, key: str) -> str:
    body = {"type": "train", "dataset": SYNTHETIC}
    response = client.post("/v1/jobs", json=body, headers=bearer(key))
    assert response.status_code == 202, response.text
    return response.json()["id"]


def open_stream(
    stack: ExitStack, client: TestClient, job_id: str, key: str, **headers: str
) -> httpx.Response:
    return stack.enter_context(
        client.stream("GET", f"/v1/jobs/{job_id}/events", headers={**bearer(key), **headers})
    )


def read_events(lines: Iterator[str], until: Callable[[dict], bool]) -> list[dict]:
    """Events as {"event", "data", "id"} up to and including the first one `until` accepts."""
    events: list[dict] = []
    current: dict = {}
    for line in lines:
        if not line:
            if "data" in current:
                events.append(current)
                if until(current):
                    return events
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            current[field] = json.loads(value) if field == "data" else value
    return events


def first_event(event: dict) -> bool:
    return True


def another_acme_key(db: sessionmaker[Session]) -> str:
    with db() as session:
        _, plaintext = create_key(session, "acme")
        session.commit()
    return plaintext


def test_a_key_past_its_stream_cap_gets_429_while_other_keys_still_stream(serve, keys, db):
    client = serve(sse_max_streams_per_key=2, sse_stream_lifetime_seconds=30)
    job_id = submit(client, keys["acme"])
    second_acme = another_acme_key(db)

    with ExitStack() as stack:
        held = [open_stream(stack, client, job_id, keys["acme"]) for _ in range(2)]
        for response in held:
            assert response.status_code == 200
            assert read_events(response.iter_lines(), first_event)[0]["event"] == "status"

        refused = client.get(f"/v1/jobs/{job_id}/events", headers=bearer(keys["acme"]))
        assert refused.status_code == 429
        assert "open event streams" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 30

        other = open_stream(stack, client, job_id, second_acme)
        assert other.status_code == 200
        assert read_events(other.iter_lines(), first_event)[0]["data"]["status"] == "queued"

    with client.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers=bearer(keys["acme"])
    ) as reopened:
        assert reopened.status_code == 200  # closing the streams gave their slots back


def test_the_process_caps_its_open_streams_across_keys(serve, keys, db):
    client = serve(sse_max_streams=3, sse_max_streams_per_key=8, sse_stream_lifetime_seconds=30)
    acme_job = submit(client, keys["acme"])
    globex_job = submit(client, keys["globex"])

    with ExitStack() as stack:
        for key in (keys["acme"], another_acme_key(db), keys["admin"]):
            assert open_stream(stack, client, acme_job, key).status_code == 200

        refused = client.get(f"/v1/jobs/{globex_job}/events", headers=bearer(keys["globex"]))
        assert refused.status_code == 429
        assert "this server has 3 open event streams" in refused.json()["detail"]
        assert int(refused.headers["Retry-After"]) >= 1


def test_a_stream_ends_after_its_lifetime_and_resumes_from_last_event_id(serve, keys, db):
    client = serve(sse_stream_lifetime_seconds=0.6)
    job_id = submit(client, keys["acme"])
    with db() as session:
        transition(session, job_id, JobStatus.RUNNING)
        upsert_metrics(session, job_id, "epoch", 1, {"loss": 0.5})
        session.commit()

    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=bearer(keys["acme"])) as first:
        before = read_events(first.iter_lines(), lambda event: False)  # the server ends it
    assert before[-1]["event"] == "end"
    assert before[-1]["data"]["reason"] == "lifetime"
    assert "id" not in before[-1]

    with db() as session:  # while nobody listens: another epoch, progress, the end
        upsert_metrics(session, job_id, "epoch", 2, {"loss": 0.25})
        session.get(Job, job_id).progress = {"epoch": 2, "epochs": 2}
        transition(session, job_id, JobStatus.SUCCEEDED)
        session.commit()

    resume_from = before[-2]["id"]
    with client.stream(
        "GET",
        f"/v1/jobs/{job_id}/events",
        headers={**bearer(keys["acme"]), "Last-Event-ID": resume_from},
    ) as second:
        after = read_events(second.iter_lines(), lambda event: False)

    seen = [e for e in before + after if e["event"] != "end"]
    assert [(e["event"], e["data"].get("step") or e["data"].get("status")) for e in seen] == [
        ("metrics", 1),
        ("status", "running"),
        ("metrics", 2),
        ("progress", None),
        ("status", "succeeded"),
    ]
    assert len({e["id"] for e in seen}) == len(seen)


def test_a_revoked_keys_stream_stops_within_a_poll(serve, keys, db):
    client = serve(sse_stream_lifetime_seconds=30)
    job_id = submit(client, keys["acme"])

    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=bearer(keys["acme"])) as stream:
        lines = stream.iter_lines()
        assert read_events(lines, first_event)[0]["event"] == "status"
        with db() as session:
            revoke_key(session, keys["acme"].split("_")[1])
            session.commit()
        started = time.monotonic()
        rest = read_events(lines, lambda event: False)
        waited = time.monotonic() - started

    assert [(e["event"], e["data"]["reason"]) for e in rest] == [("end", "revoked")]
    assert waited < 10  # polls run every 0.05 s here; the lifetime is 30 s


def test_logging_out_ends_the_sessions_streams_within_a_poll(serve, keys, db):
    """A stream opened with the dashboard's login cookie ends once that session is logged
    out (as a revoked key's does), not when the job ends or its lifetime runs out; a stream
    of the same key opened with the key itself goes on."""
    client = serve(sse_stream_lifetime_seconds=30)
    job_id = submit(client, keys["acme"])
    login = client.post("/dashboard/login", data={"api_key": keys["acme"]}, follow_redirects=False)
    assert login.status_code == 303 and client.cookies.get("tass_session")

    with ExitStack() as stack:
        cookie_stream = stack.enter_context(client.stream("GET", f"/v1/jobs/{job_id}/events"))
        key_stream = open_stream(stack, client, job_id, keys["acme"])
        cookie_lines, key_lines = cookie_stream.iter_lines(), key_stream.iter_lines()
        assert read_events(cookie_lines, first_event)[0]["event"] == "status"
        assert read_events(key_lines, first_event)[0]["event"] == "status"
        logout = client.post(
            "/dashboard/logout", headers={"Origin": "http://testserver"}, follow_redirects=False
        )
        assert logout.status_code == 303
        started = time.monotonic()
        rest = read_events(cookie_lines, lambda event: False)
        waited = time.monotonic() - started
        with db() as session:
            transition(session, job_id, JobStatus.CANCELLED, reason="test")
            session.commit()
        after_logout = read_events(key_lines, lambda event: event["event"] == "status")

    assert [(e["event"], e["data"]["reason"]) for e in rest] == [("end", "session_ended")]
    assert waited < 10  # polls run every 0.05 s here; the lifetime is 30 s
    assert after_logout[-1]["data"]["status"] == "cancelled"


def test_many_streams_on_one_job_share_one_poller(serve, keys):
    poll_seconds = 0.05
    client = serve(sse_max_streams_per_key=40, sse_stream_lifetime_seconds=30)
    client.app.state.change_feed.close()
    client.app.state.change_feed = ChangeFeed()  # off: the poller reads every interval
    hub = client.app.state.event_hub
    job_id = submit(client, keys["acme"])

    with ExitStack() as stack:
        streams = [open_stream(stack, client, job_id, keys["acme"]) for _ in range(40)]
        for response in streams:
            assert read_events(response.iter_lines(), first_event)[0]["data"]["status"] == "queued"
        assert hub.open_count() == 40
        polls_before = hub.polls
        time.sleep(20 * poll_seconds)
        polls = hub.polls - polls_before

    # one poller: about 20 polls in the window (40 streams polling alone would make ~800)
    assert 1 <= polls <= 30
    assert hub.open_count() == 0


def test_streams_ride_the_change_feed_reading_the_database_only_after_a_change(serve, keys, db):
    """With the feed live (SQLite's data_version here; NOTIFY on PostgreSQL) an idle job's
    stream costs no query per interval, and a change still arrives within one."""
    client = serve(sse_stream_lifetime_seconds=30)
    assert client.app.state.change_feed.state == "live"
    hub = client.app.state.event_hub
    job_id = submit(client, keys["acme"])

    with ExitStack() as stack:
        lines = open_stream(stack, client, job_id, keys["acme"]).iter_lines()
        assert read_events(lines, first_event)[0]["data"]["status"] == "queued"
        time.sleep(0.2)  # the read after the stream joined
        idle_before = hub.polls
        time.sleep(20 * 0.05)  # twenty poll intervals with nothing changing
        idle = hub.polls - idle_before
        with db() as session:
            transition(session, job_id, JobStatus.CANCELLED, reason="test")
            session.commit()
        started = time.monotonic()
        changed = read_events(lines, lambda event: event["event"] == "status")
        waited = time.monotonic() - started

    assert idle == 0
    assert changed[-1]["data"]["status"] == "cancelled"
    assert waited < 5  # within a poll interval or so (0.05 s), with a loaded machine's margin


def test_a_malformed_last_event_id_replays_from_the_start_and_progress_is_never_resent():
    state = JobEventState(
        status="running",
        transitions=2,
        last_transition_at=None,
        progress={"epoch": 1},
        epochs=((1, {"loss": 0.5}),),
    )
    for garbage in (None, "", "x.y.z", "1.2", "-5.0.", "1.2.not-hex!"):
        assert StreamCursor.decode(garbage) == StreamCursor()

    events, cursor = events_since(state, StreamCursor.decode("junk"))
    assert [e["event"] for e in events] == ["metrics", "progress", "status"]
    assert StreamCursor.decode(events[-1]["id"]) == cursor
    assert events_since(state, cursor) == ([], cursor)
