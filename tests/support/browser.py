"""The dashboard browser tests' Playwright page: Debian's chromium (Playwright downloads none),
logged in with a key, and failing the test on any page error or HTTP error response."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import playwright.sync_api as playwright_api  # the dev extra installs it

CHROMIUM = os.environ.get("TASS_TEST_CHROMIUM", "/usr/bin/chromium")
assert Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: run scripts/setup.sh cpu,dev"
expect = playwright_api.expect


@contextmanager
def logged_in_page(
    url: str,
    key: str,
    log_tail: Callable[[], str],
    timeout_ms: int,
    expected_errors: Collection[tuple[int, str]] = (),
) -> Iterator[playwright_api.Page]:
    """A page on the dashboard at `url`, logged in with `key`; on exit, the page errors and
    HTTP error responses it met (favicon aside, and the (status, URL path) pairs in
    `expected_errors`, which a test provokes on purpose) fail the test, with the server's
    log tail."""
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=url)
        context.set_default_timeout(timeout_ms)
        tab = context.new_page()
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on(
            "response",
            lambda r: (
                problems.append(f"HTTP {r.status} {r.url}")
                if r.status >= 400
                and not r.url.endswith("/favicon.ico")
                and (r.status, urlsplit(r.url).path) not in expected_errors
                else None
            ),
        )
        tab.goto("/dashboard/login")
        tab.get_by_label("API key").fill(key)
        tab.get_by_role("button", name="Log in").click()
        tab.wait_for_url(re.compile(r"/dashboard$"))
        yield tab
        browser.close()
        assert not problems, "\n".join(problems) + "\n" + log_tail()
