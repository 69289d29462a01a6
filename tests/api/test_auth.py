"""Who may call what: keys, revocation, tenant isolation, quotas, rate limits, body limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tass.core.objectstore import ObjectStore
from tests.api.conftest import bearer
from tests.support.seed import seed_trained_model

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


@pytest.fixture
def acme_resources(client, db, settings) -> dict[str, str]:
    """A job and a downloadable model owned by tenant `acme`."""
    job_id = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()["id"]
    store = ObjectStore(settings.resolved_artifact_url)
    with db() as session:
        model = seed_trained_model(session, store, b"weights", tenant="acme")
        session.commit()
        return {"job": job_id, "model": model.id}


def endpoints(ids: dict[str, str]) -> list[tuple[str, str, dict | None]]:
    return [
        ("GET", "/v1/jobs", None),
        ("POST", "/v1/jobs", {"type": "train", "dataset": SYNTHETIC}),
        ("GET", f"/v1/jobs/{ids['job']}", None),
        ("GET", f"/v1/jobs/{ids['job']}/metrics", None),
        ("GET", f"/v1/jobs/{ids['job']}/events", None),
        ("POST", f"/v1/jobs/{ids['job']}/cancel", None),
        ("GET", "/v1/models", None),
        ("GET", f"/v1/models/{ids['model']}", None),
        ("GET", f"/v1/models/{ids['model']}/download", None),
    ]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer not-a-key",
        "Basic dXNlcjpwYXNz",
        "Bearer tass_000000000000_" + "x" * 43,
    ],
)
def test_every_v1_endpoint_needs_a_valid_key(anonymous, acme_resources, header):
    headers = {"Authorization": header} if header else {}
    for method, path, body in endpoints(acme_resources):
        response = anonymous.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_key_is_refused_at_once(anonymous, acme_resources, keys):
    for method, path, body in endpoints(acme_resources):
        response = anonymous.request(method, path, json=body, headers=bearer(keys["revoked"]))
        assert response.status_code == 401, (method, path)


def test_another_tenant_sees_nothing_and_gets_404(anonymous, acme_resources, keys):
    other = bearer(keys["globex"])
    assert anonymous.get("/v1/jobs", headers=other).json()["items"] == []
    assert anonymous.get("/v1/models", headers=other).json()["items"] == []
    for method, path, body in endpoints(acme_resources):
        if path not in ("/v1/jobs", "/v1/models"):
            response = anonymous.request(method, path, json=body, headers=other)
            assert response.status_code == 404, (method, path)
    evaluate = {"type": "evaluate", "model_id": acme_resources["model"], "dataset": SYNTHETIC}
    assert anonymous.post("/v1/jobs", json=evaluate, headers=other).status_code == 422


def test_owner_and_admin_see_the_resources(anonymous, acme_resources, keys):
    for key in (keys["acme"], keys["admin"]):
        headers = bearer(key)
        ids = [job["id"] for job in anonymous.get("/v1/jobs", headers=headers).json()["items"]]
        assert acme_resources["job"] in ids
        model = anonymous.get(f"/v1/models/{acme_resources['model']}/download", headers=headers)
        assert model.content == b"weights"


def test_probes_need_no_key(anonymous):
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200


def test_openapi_declares_the_key_and_the_session_cookie_on_every_v1_operation(settings):
    schema = create_app(settings).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `tass keys create`.",
    }
    assert schemes["APIKeyCookie"]["in"] == "cookie"
    assert schemes["APIKeyCookie"]["name"] == "tass_session"
    either = [{"HTTPBearer": []}, {"APIKeyCookie": []}]
    operations = {
        (method, path): operation.get("security")
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert ("get", "/v1/jobs/{job_id}") in operations
    for (method, path), security in operations.items():
        expected = either if path.startswith("/v1/") else None
        assert security == expected, (method, path)


def test_jobs_belong_to_the_submitting_tenant(client, keys, anonymous):
    job = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()
    assert "tenant" not in job or job["tenant"] == "acme"
    response = anonymous.post(
        "/v1/jobs",
        json={"type": "train", "dataset": SYNTHETIC, "tenant": "globex"},
        headers=bearer(keys["acme"]),
    )
    assert response.status_code == 422
    assert "tenant" in str(response.json()["detail"])


def test_active_job_quota_is_429_with_retry_after_and_frees_up(settings, db, keys):
    app = create_app(settings.model_copy(update={"max_active_jobs_per_tenant": 2}))
    with TestClient(app, headers=bearer(keys["acme"])) as client:
        app.state.session_factory = db
        ids = [
            client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()["id"]
            for _ in range(2)
        ]
        refused = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "limit 2" in refused.json()["detail"]
        other = client.post(
            "/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}, headers=bearer(keys["globex"])
        )
        assert other.status_code == 202, "quotas are per tenant"

        client.post(f"/v1/jobs/{ids[0]}/cancel")
        assert (
            client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).status_code == 202
        )


def test_request_rate_limit_is_429_with_retry_after_and_resets(settings, db, keys):
    import time

    # a window long enough that a slow machine still makes 4 requests inside it
    app = create_app(settings.model_copy(update={"rate_limit": "3/5second"}))
    with TestClient(app, headers=bearer(keys["acme"])) as client:
        app.state.session_factory = db
        # the sliding-window counter weighs the previous 5 s window down as time passes: start
        # the 4 requests early in a window so that none of them falls in the previous one
        if time.time() % 5 > 2:
            time.sleep(5 - time.time() % 5 + 0.05)
        assert [client.get("/v1/jobs").status_code for _ in range(3)] == [200, 200, 200]
        limited = client.get("/v1/jobs")
        assert limited.status_code == 429
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 5
        assert client.get("/v1/jobs", headers=bearer(keys["globex"])).status_code == 200
        time.sleep(retry_after + 0.2)
        assert client.get("/v1/jobs").status_code == 200, "the limit resets when Retry-After says"


def test_oversized_body_is_413_before_parsing(client, db):
    huge = b'{"type": "train", "name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/v1/jobs", content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_oversized_streamed_body_without_length_is_413(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 65536

    response = client.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
