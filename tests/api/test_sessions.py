"""Dashboard sessions are server-side tokens, not API keys; cookie-authenticated unsafe requests
must come from this origin; failed authentication is throttled per client address."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tass.api.app import create_app
from tass.core.apikeys import revoke_key
from tass.core.models import DashboardSession, utcnow
from tests.api.conftest import bearer

SYNTHETIC = {"source": "synthetic", "num_examples": 100}
SAME_ORIGIN = {"Origin": "http://testserver"}


def log_in(client: TestClient, key: str) -> str:
    response = client.post(
        "/dashboard/login", data={"api_key": key}, headers=SAME_ORIGIN, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return response.cookies["tass_session"]


@pytest.fixture
def browser(app) -> TestClient:
    """A cookie-carrying client with no Authorization header (what the dashboard is)."""
    return TestClient(app)


@pytest.fixture
def queued_job(client) -> str:
    return client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}).json()["id"]


def test_the_cookie_is_a_random_session_token_stored_hashed(browser, keys, db, settings):
    response = browser.post(
        "/dashboard/login",
        data={"api_key": keys["acme"]},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    token = response.cookies["tass_session"]
    cookie = response.headers["set-cookie"].lower()
    assert token != keys["acme"] and keys["acme"].split("_", 2)[2] not in token
    assert len(token) >= 43
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert f"max-age={settings.session_ttl_seconds}" in cookie
    with db() as session:
        (row,) = session.scalars(select(DashboardSession)).all()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in row.token_hash
    assert browser.get("/v1/jobs").status_code == 200
    assert browser.get("/dashboard").status_code == 200


@pytest.mark.parametrize(
    "page", ["/dashboard", "/dashboard/jobs/j-1", "/dashboard/compare?ids=a,b", "/dashboard/models"]
)
def test_every_page_without_a_session_redirects_to_the_login_form_and_back(anonymous, page):
    response = anonymous.get(page, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/login?next={quote(page, safe='')}"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("path", "page", "title"),
    [
        ("/dashboard", "jobs", "Jobs"),
        ("/dashboard/sweeps", "sweeps", "Sweeps"),
        ("/dashboard/models", "models", "Models"),
        ("/dashboard/datasets", "datasets", "Datasets"),
        ("/dashboard/workers", "workers", "Workers"),
    ],
)
def test_each_list_page_shows_its_own_script_and_title(browser, keys, path, page, title):
    log_in(browser, keys["acme"])
    response = browser.get(path)
    assert response.status_code == 200
    assert f"<title>{title} · tass</title>" in response.text
    assert f'data-page="{page}"' in response.text
    assert f"/static/{page}.js" in response.text


def test_a_raw_api_key_in_the_cookie_is_refused(anonymous, keys):
    anonymous.cookies.set("tass_session", keys["acme"])
    assert anonymous.get("/v1/jobs").status_code == 401
    assert anonymous.get("/dashboard", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_on_the_server(browser, keys):
    token = log_in(browser, keys["acme"])
    response = browser.post("/dashboard/logout", headers=SAME_ORIGIN, follow_redirects=False)
    assert response.status_code == 303
    browser.cookies.set("tass_session", token)  # a copy the attacker kept
    assert browser.get("/v1/jobs").status_code == 401


def test_event_streams_find_logged_out_and_expired_sessions(browser, keys, db):
    """What a stream's poller asks (on both databases): which of its sessions have ended."""
    from tass.core.dashboard_sessions import end_session, live_expiries

    tokens = [log_in(browser, keys["acme"]) for _ in range(3)]
    with db() as session:
        ids = {
            token: session.scalar(
                select(DashboardSession.id).where(
                    DashboardSession.token_hash == hashlib.sha256(token.encode()).hexdigest()
                )
            )
            for token in tokens
        }
        expiries = live_expiries(session, set(ids.values()))
        assert expiries.keys() == set(ids.values())
        assert all(moment > utcnow() for moment in expiries.values())
        end_session(session, tokens[0])
        session.execute(
            update(DashboardSession)
            .where(DashboardSession.id == ids[tokens[1]])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
        assert live_expiries(session, set(ids.values())).keys() == {ids[tokens[2]]}


def test_a_foreign_origin_cannot_log_you_out(browser, keys):
    log_in(browser, keys["acme"])
    browser.post("/dashboard/logout", headers={"Origin": "http://evil.example"})
    assert browser.get("/v1/jobs").status_code == 200


def test_an_expired_session_is_refused(browser, keys, db):
    log_in(browser, keys["acme"])
    with db() as session:
        session.execute(update(DashboardSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert browser.get("/v1/jobs").status_code == 401
    assert browser.get("/dashboard", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(browser, keys, db):
    log_in(browser, keys["acme"])
    with db() as session:
        revoke_key(session, keys["acme"].split("_")[1])
        session.commit()
    assert browser.get("/v1/jobs").status_code == 401


@pytest.mark.parametrize(
    "origin",
    ["http://testserver:8081", "http://evil.example", "null", None],
    ids=["another-port", "another-host", "null", "missing"],
)
def test_cookie_unsafe_requests_need_this_origin(browser, keys, client, queued_job, origin):
    log_in(browser, keys["acme"])
    headers = {"Content-Type": "text/plain"}  # what a cross-site form can send
    if origin is not None:
        headers["Origin"] = origin
    response = browser.post(f"/v1/jobs/{queued_job}/cancel", content="x", headers=headers)
    assert response.status_code == 403
    assert client.get(f"/v1/jobs/{queued_job}").json()["status"] == "queued"
    submitted = browser.post(
        "/v1/jobs", json={"type": "train", "dataset": SYNTHETIC}, headers=headers
    )
    assert submitted.status_code == 403


def test_cookie_unsafe_requests_from_this_origin_work(browser, keys, client, queued_job):
    log_in(browser, keys["acme"])
    response = browser.post(f"/v1/jobs/{queued_job}/cancel", headers=SAME_ORIGIN)
    assert response.status_code == 202, response.text
    assert client.get(f"/v1/jobs/{queued_job}").json()["status"] == "cancelled"


def test_bearer_clients_need_no_origin(client, queued_job):
    assert client.post(f"/v1/jobs/{queued_job}/cancel").status_code == 202


@pytest.fixture
def strict_app(settings, db):
    app = create_app(settings.model_copy(update={"auth_failure_limit": "5/minute"}))
    with TestClient(app):
        app.state.session_factory = db
        yield app


def test_failed_authentication_is_throttled_per_address(strict_app, keys):
    attacker = TestClient(strict_app, client=("203.0.113.7", 40000))
    bad = bearer("tass_000000000000_" + "x" * 43)
    assert [attacker.get("/v1/jobs", headers=bad).status_code for _ in range(5)] == [401] * 5
    refused = attacker.get("/v1/jobs", headers=bad)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # a right guess from that address is refused too, so guessing gains nothing
    assert attacker.get("/v1/jobs", headers=bearer(keys["acme"])).status_code == 429
    cookie = TestClient(strict_app, client=("203.0.113.7", 40001))
    cookie.cookies.set("tass_session", "forged")
    assert cookie.get("/v1/jobs").status_code == 429
    login = attacker.post("/dashboard/login", data={"api_key": keys["acme"]})
    assert login.status_code == 429
    assert "tass_session" not in login.headers.get("set-cookie", "")
    other = TestClient(strict_app, client=("198.51.100.9", 40000))
    assert other.get("/v1/jobs", headers=bearer(keys["acme"])).status_code == 200


def test_failed_dashboard_logins_count_too(strict_app, keys):
    attacker = TestClient(strict_app, client=("203.0.113.8", 40000))
    for _ in range(5):
        response = attacker.post("/dashboard/login", data={"api_key": "tass_nope"})
        assert response.status_code == 401
    assert attacker.post("/dashboard/login", data={"api_key": keys["acme"]}).status_code == 429
    assert attacker.get("/v1/jobs", headers=bearer(keys["acme"])).status_code == 429


def test_failed_metrics_scrapes_with_a_key_are_throttled_too(strict_app, keys):
    outsider = TestClient(strict_app, client=("203.0.113.9", 40000))
    bad = bearer("tass_000000000000_" + "x" * 43)
    assert [outsider.get("/metrics", headers=bad).status_code for _ in range(5)] == [401] * 5
    assert outsider.get("/metrics", headers=bearer(keys["admin"])).status_code == 429
