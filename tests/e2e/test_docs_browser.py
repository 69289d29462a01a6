"""/docs and /redoc render in a real browser (Debian's chromium) from the service's own files,
under their CSP, with every other network request refused: the pages work offline and run no
third party's script."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tass.core.apikeys import create_key
from tass.core.db import make_engine, make_session_factory
from tests.support.browser import expect, logged_in_page
from tests.support.processes import sqlite_service_settings, start_api

pytestmark = pytest.mark.integration

# ReDoc's bundle hard-codes its attribution logo at a CDN URL: the CSP (img-src 'self' data:)
# blocks it before any request is made, and ReDoc removes the image when it fails to load.
# Any other violation (a script, a style, a fetch) fails the test.
IMAGE_VIOLATION = re.compile(
    r"^Loading the image '[^']+' violates the following Content Security Policy "
    r"directive: \"img-src "
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("docs-browser")
    database, env = sqlite_service_settings(root)
    engine = make_engine(database)
    with make_session_factory(engine).begin() as session:
        _, key = create_key(session, "acme")
    engine.dispose()
    service, url = start_api(env, root)
    try:
        yield {"url": url, "key": key, "service": service}
    finally:
        service.stop()


def open_offline(tab, url: str, path: str) -> list[str]:
    """Goes to `path` with requests to any other origin aborted; returns what was blocked and
    the page's CSP violations."""
    blocked: list[str] = []

    def only_this_origin(route) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    tab.route("**/*", only_this_origin)
    tab.on(
        "console",
        lambda message: (
            blocked.append(message.text)
            if "Content Security Policy" in message.text
            and not IMAGE_VIOLATION.search(message.text)
            else None
        ),
    )
    tab.goto(path)
    return blocked


def test_swagger_ui_renders_offline_under_its_csp(site):
    with logged_in_page(site["url"], site["key"], site["service"].log_tail, 20_000) as tab:
        blocked = open_offline(tab, site["url"], "/docs")
        expect(tab.locator(".opblock-summary-path", has_text="/v1/jobs").first).to_be_visible()
        assert blocked == []


def test_redoc_renders_offline_under_its_csp(site):
    with logged_in_page(site["url"], site["key"], site["service"].log_tail, 20_000) as tab:
        blocked = open_offline(tab, site["url"], "/redoc")
        expect(tab.get_by_text("/v1/jobs").first).to_be_attached()
        assert blocked == []
