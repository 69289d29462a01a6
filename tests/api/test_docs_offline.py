"""/docs and /redoc load Swagger UI and ReDoc from the service itself (offline, no third-party
script in the service's origin), under a CSP that allows scripts from this origin only and no
framing (issue 26 item 21, issue 32 item 3)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tests.api.conftest import bearer

ASSET = re.compile(r'(?:src|href|spec-url|data-openapi-url)="([^"]+)"')
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "json"}


def check_page(client: TestClient, path: str, **headers: str) -> list[str]:
    """The page's asset URLs, after checking each is this origin's and loads."""
    page = client.get(path, headers=headers)
    assert page.status_code == 200
    assert "//" not in re.sub(r"<!doctype html>", "", page.text, flags=re.I), "an external URL"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert "<script>" not in page.text, "no inline script: the CSP allows none"
    urls = ASSET.findall(page.text)
    assert urls
    for url in urls:
        assert url.startswith("/"), url
        asset = client.get(url, headers=headers)
        assert asset.status_code == 200, url
        kind = CONTENT_TYPES[url[url.rindex(".") :]]
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
        assert len(asset.content) > 0
    return urls


def test_swagger_ui_is_served_from_the_service(anonymous, keys):
    urls = check_page(anonymous, "/docs", **bearer(keys["acme"]))
    assert "/docs/static/swagger-ui-bundle.js" in urls
    assert "/docs/static/swagger-start.js" in urls
    start = anonymous.get("/docs/static/swagger-start.js").text
    assert "SwaggerUIBundle(" in start and "validatorUrl: null" in start
    assert "SwaggerUIBundle" in anonymous.get("/docs/static/swagger-ui-bundle.js").text


def test_redoc_is_served_from_the_service(anonymous, keys):
    urls = check_page(anonymous, "/redoc", **bearer(keys["acme"]))
    assert "/docs/static/redoc.standalone.js" in urls


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_public_docs_are_served_from_the_service_too(settings, db, path):
    app = create_app(settings.model_copy(update={"public_docs": True}))
    with TestClient(app) as anonymous:
        app.state.session_factory = db
        check_page(anonymous, path)
