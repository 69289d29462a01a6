"""Only the service's own host names are answered (DNS rebinding): a foreign Host is 400 for
/metrics and for the dashboard login, whose Origin check compares Origin with Host."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app

FOREIGN = "rebound.example:8000"


@pytest.fixture
def loopback(app) -> TestClient:
    """A client on 127.0.0.1, to which /metrics is open."""
    return TestClient(app, client=("127.0.0.1", 40000))


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_loopback_names_are_answered(loopback, host):
    assert loopback.get("/metrics", headers={"Host": host}).status_code == 200


def test_a_foreign_host_cannot_read_metrics(loopback):
    response = loopback.get("/metrics", headers={"Host": FOREIGN})
    assert response.status_code == 400
    assert "tass_" not in response.text


def test_a_foreign_host_cannot_pass_the_login_origin_check(loopback, keys):
    headers = {"Host": FOREIGN, "Origin": f"http://{FOREIGN}"}
    response = loopback.post(
        "/dashboard/login", data={"api_key": keys["acme"]}, headers=headers, follow_redirects=False
    )
    assert response.status_code == 400
    assert "set-cookie" not in response.headers


def test_health_probes_answer_any_host(loopback):
    assert loopback.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_configured_names_are_answered(settings, db):
    settings = settings.model_copy(update={"allowed_hosts": ["tass.internal", "*.corp.example"]})
    with TestClient(create_app(settings), client=("127.0.0.1", 40000)) as client:
        client.app.state.session_factory = db
        for host in ("tass.internal:8000", "api.corp.example"):
            assert client.get("/metrics", headers={"Host": host}).status_code == 200
        assert client.get("/metrics", headers={"Host": FOREIGN}).status_code == 400


@pytest.mark.parametrize("host", ["10.1.2.3:8000", "10.1.2.3", "[fd00::1]:8000", "[fd00::1]"])
def test_an_address_is_answered_as_a_scraper_sends_it(loopback, host):
    """Prometheus in a cluster scrapes a pod by its address; rebinding always sends a name."""
    assert loopback.get("/metrics", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["10.1.2.3.rebound.example", "1.2.3.4:80:80", ""])
def test_names_that_only_look_like_addresses_are_not(loopback, host):
    assert loopback.get("/metrics", headers={"Host": host}).status_code == 400
