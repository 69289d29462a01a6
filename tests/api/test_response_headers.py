"""Response headers: nosniff everywhere, no caching of tenant data, no Host reflection, and
the API documents behind a key unless TASS_PUBLIC_DOCS is set."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tests.api.conftest import bearer


@pytest.mark.parametrize(
    "path", ["/v1/jobs", "/v1/models", "/v1/workers", "/v1/jobs/nope", "/healthz", "/metrics"]
)
def test_api_responses_are_nosniff_and_no_store(client, path):
    response = client.get(path)
    assert response.status_code < 500
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_errors_before_the_handler_carry_the_headers_too(anonymous):
    response = anonymous.get("/v1/jobs")
    assert response.status_code == 401
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"


def test_static_files_are_nosniff_and_keep_their_validators(anonymous):
    page = anonymous.get("/dashboard/login")
    stylesheet = re.search(r'href="([^"]+\.css[^"]*)"', page.text).group(1)
    response = anonymous.get(stylesheet)
    assert response.status_code == 200
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "etag" in response.headers
    assert "no-store" not in response.headers.get("cache-control", "")


@pytest.mark.parametrize("path", ["/dashboard/", "/v1/jobs/"])
def test_trailing_slash_never_reflects_the_host(anonymous, path):
    # a foreign Host is refused outright (test_host_allowlist.py); an allowed one is not echoed
    response = anonymous.get(path, headers={"Host": "localhost:9999"}, follow_redirects=False)
    assert "localhost" not in response.headers.get("location", "")
    assert "localhost" not in response.text
    if path == "/dashboard/":
        assert response.status_code == 307
        assert response.headers["location"] == "/dashboard"


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_api_documents_need_a_key_by_default(anonymous, keys, path):
    assert anonymous.get(path).status_code == 401
    assert anonymous.get(path, headers=bearer(keys["revoked"])).status_code == 401
    response = anonymous.get(path, headers=bearer(keys["acme"]))
    assert response.status_code == 200
    if path == "/openapi.json":
        assert "/v1/jobs" in response.json()["paths"]


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_public_docs_setting_opens_them(settings, db, path):
    app = create_app(settings.model_copy(update={"public_docs": True}))
    with TestClient(app) as anonymous:
        app.state.session_factory = db
        assert anonymous.get(path).status_code == 200


def test_a_dashboard_session_opens_the_docs(anonymous, keys):
    anonymous.post(
        "/dashboard/login", data={"api_key": keys["acme"]}, headers={"Origin": "http://testserver"}
    )
    assert anonymous.get("/docs").status_code == 200
    assert "/v1/jobs" in anonymous.get("/openapi.json").json()["paths"]
