"""/v1/webhooks: registration with the SSRF guard (never contacting the URL), the secret shown
once, tenant isolation, and the outbox rows a job's end writes in its own transaction."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from standardwebhooks import Webhook as Verifier

from tass.contract.statuses import JobStatus
from tass.core.job_transitions import transition
from tass.core.models import WebhookOutbox
from tass.core.netguard import LOOKUP_THREADS
from tests.api.conftest import bearer
from tests.support.webhook_jobs import move, new_job

PUBLIC = "https://93.184.215.14/hooks"


def register(client, url=PUBLIC, events=("job.succeeded", "job.failed"), **extra):
    return client.post("/v1/webhooks", json={"url": url, "events": list(events), **extra})


@pytest.fixture
def resolver(app):
    """The API's resolver, stubbed: names map to fixed addresses, and every lookup is noted."""
    asked = []
    table = {"hooks.example.com": ["93.184.215.14"], "intranet.example.com": ["192.168.1.5"]}

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return table.get(host, [])

    app.state.webhook_resolver = resolve
    return asked


def test_register_answers_the_secret_once(client, resolver):
    response = register(client, "https://hooks.example.com/in", description="ci")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"].startswith("whsec_")
    Verifier(created["secret"])  # the library accepts it as a signing secret
    assert response.headers["location"] == f"/v1/webhooks/{created['id']}"
    assert resolver == ["hooks.example.com"]  # resolved, never contacted
    shown = client.get(f"/v1/webhooks/{created['id']}").json()
    listed = client.get("/v1/webhooks").json()["items"]
    assert "secret" not in shown and all("secret" not in item for item in listed)
    assert shown["events"] == ["job.succeeded", "job.failed"] and shown["description"] == "ci"
    assert [item["id"] for item in listed] == [created["id"]]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/h",
        "http://172.16.5.4/h",
        "http://192.168.0.1/h",
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/h",
        "http://[::1]/h",
        "http://[fe80::1]/h",
        "http://[::ffff:10.0.0.1]/h",
        "https://intranet.example.com/h",
        "https://does-not-resolve.example.com/h",
        "ftp://93.184.215.14/h",
    ],
)
def test_unsafe_urls_are_refused_naming_the_url_field(client, resolver, url):
    response = register(client, url)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "url"]
    assert client.get("/v1/webhooks").json()["items"] == []


def test_allowed_networks_admit_only_their_addresses(client, settings, resolver):
    settings.webhook_allow_networks = ["127.0.0.1/32"]
    assert register(client, "http://127.0.0.1:9/h").status_code == 201
    refused = register(client, "http://127.0.0.2:9/h")
    assert refused.status_code == 422 and "127.0.0.2" in refused.json()["detail"][0]["msg"]


def test_unknown_event_types_are_refused_naming_events(client, resolver):
    response = register(client, events=["job.exploded"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "events"]
    assert register(client, events=[]).json()["detail"][0]["loc"] == ["body", "events"]


def test_another_tenants_webhook_is_missing(client, app, keys, resolver):
    webhook_id = register(client).json()["id"]
    globex = TestClient(app, headers=bearer(keys["globex"]))
    for path in (f"/v1/webhooks/{webhook_id}", f"/v1/webhooks/{webhook_id}/deliveries"):
        assert globex.get(path).status_code == 404
    assert globex.delete(f"/v1/webhooks/{webhook_id}").status_code == 404
    assert globex.get("/v1/webhooks").json()["items"] == []
    assert client.get(f"/v1/webhooks/{webhook_id}").status_code == 200


def test_delete_removes_the_webhook(client, resolver):
    webhook_id = register(client).json()["id"]
    assert client.delete(f"/v1/webhooks/{webhook_id}").status_code == 204
    assert client.get(f"/v1/webhooks/{webhook_id}").status_code == 404
    assert client.delete(f"/v1/webhooks/{webhook_id}").status_code == 404


def test_a_name_whose_nameserver_never_answers_gets_503_and_frees_the_request(
    client, app, settings
):
    settings.webhook_resolve_timeout_seconds = 0.3
    release = threading.Event()

    def silent_nameserver(host: str, port: int) -> list[str]:
        release.wait(20)  # a stub: no packet leaves the machine
        return ["93.184.215.14"]

    app.state.webhook_resolver = silent_nameserver
    try:
        for n in range(LOOKUP_THREADS + 2):  # past the lookup threads, later lookups queue
            response = register(client, f"https://silent{n}.example.com/in")
            assert response.status_code == 503, response.text
            assert int(response.headers["retry-after"]) > 0
            assert "did not resolve within 0.3 s" in response.json()["detail"]
            assert response.json()["detail"].startswith("url: ")
        assert client.get("/v1/webhooks").json()["items"] == []  # the process still answers
    finally:
        release.set()
    assert register(client).status_code == 201  # an address needs no lookup


def test_a_tenant_past_its_webhook_cap_gets_409(client, settings, resolver):
    settings.webhook_max_per_tenant = 2
    first, _ = (register(client).json()["id"] for _ in range(2))
    over = register(client)
    assert over.status_code == 409
    assert "TASS_WEBHOOK_MAX_PER_TENANT=2" in over.json()["detail"]
    assert len(client.get("/v1/webhooks").json()["items"]) == 2
    assert client.delete(f"/v1/webhooks/{first}").status_code == 204
    assert register(client).status_code == 201


def outbox(db) -> list[tuple[str, str, str]]:
    with db() as session:
        rows = session.scalars(select(WebhookOutbox).order_by(WebhookOutbox.id))
        return [(row.webhook_id, row.event_type, row.payload["data"]["status"]) for row in rows]


def test_a_job_end_is_written_to_the_outbox_of_its_tenants_subscribers(
    client, app, keys, db, resolver
):
    ends = register(client, events=["job.succeeded"]).json()["id"]
    register(client, events=["job.failed"])  # subscribed to another event
    TestClient(app, headers=bearer(keys["globex"])).post(
        "/v1/webhooks", json={"url": PUBLIC, "events": ["job.succeeded"]}
    )  # another tenant's
    job_id = new_job(db)
    move(db, job_id, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    assert outbox(db) == [(ends, "job.succeeded", "succeeded")]
    with db() as session:
        payload = session.scalar(select(WebhookOutbox.payload))
    assert payload["type"] == "job.succeeded" and payload["data"]["id"] == job_id
    assert payload["data"]["tenant"] == "acme" and payload["data"]["finished_at"]


def test_a_rolled_back_job_change_writes_no_event(client, db, resolver):
    register(client, events=["job.started"])
    job_id = new_job(db)
    with db() as session:
        assert transition(session, job_id, JobStatus.RUNNING)
        session.rollback()
    assert outbox(db) == []
    move(db, job_id, JobStatus.RUNNING)
    assert [event for _, event, _ in outbox(db)] == ["job.started"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"url": "https://93.184.215.14/h", "events": ["job.failed"], "description": "a\\ud800"}',
        b'{"url": "https://93.184.215.14/\\u0000", "events": ["job.failed"]}',
        b'{"url": "https://93.184.215.14/h", "events": ["job.failed"], "description": "\\u0000"}',
        b'{"url": "https://93.184.215.14/h", "events": ["job.failed"], "extra": 1}',
        b'{"url": "https://93.184.215.14/h", "events": ["job.failed"], "events": []}',
    ],
)
def test_hostile_bodies_are_refused_with_422(client, resolver, body):
    response = client.post(
        "/v1/webhooks", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert client.get("/v1/webhooks").json()["items"] == []


def test_a_sweeps_end_is_written_to_the_outbox(client, db, resolver, drain_tasks):
    hook = register(client, events=["sweep.cancelled", "sweep.succeeded"]).json()["id"]
    sweep = client.post(
        "/v1/sweeps",
        json={
            "spec": {"epochs": 1, "width": 0.25},
            "dataset": {"source": "synthetic", "num_examples": 100},
            "method": "grid",
            "parameters": {"learning_rate": {"values": [0.01, 0.1]}},
            "max_trials": 2,
        },
    ).json()
    assert outbox(db) == []
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 202
    assert outbox(db) == [(hook, "sweep.cancelled", "cancelled")]
    with db() as session:
        data = session.scalar(select(WebhookOutbox.payload))["data"]
    assert data["id"] == sweep["id"] and data["finished_at"]
