"""X-Forwarded-For is trusted only from the proxies TASS_FORWARDED_ALLOW_IPS lists (none by
default): a real uvicorn on 127.0.0.1, started as `tass api` starts it (uvicorn alone trusts
the header from 127.0.0.1). The forwarded addresses are documentation addresses (TEST-NET):
no traffic goes to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.processes import Service, sqlite_service_settings, start_api
from tests.support.seed import new_api_key

pytestmark = pytest.mark.integration

FAILURE_LIMIT = 5


@pytest.fixture
def api(tmp_path) -> Iterator[Callable[[dict[str, str]], tuple[str, str]]]:
    """Starts the API with extra settings; returns its URL and a good key."""
    started: list[Service] = []

    def start(extra: dict[str, str]) -> tuple[str, str]:
        database, settings = sqlite_service_settings(tmp_path)
        env = {**settings, "TASS_AUTH_FAILURE_LIMIT": f"{FAILURE_LIMIT}/minute", **extra}
        service, url = start_api(env, tmp_path)
        started.append(service)
        return url, new_api_key(database, "acme")

    yield start
    for service in started:
        service.stop()


def status(url: str, key: str, forwarded_for: str) -> int:
    headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": forwarded_for}
    return httpx.get(f"{url}/v1/jobs", headers=headers, timeout=10).status_code


def test_rotating_forwarded_addresses_from_loopback_do_not_evade_the_auth_throttle(api):
    url, key = api({})
    bad = [status(url, "tass_bad_key", f"192.0.2.{i}") for i in range(FAILURE_LIMIT + 3)]
    assert bad[:FAILURE_LIMIT] == [401] * FAILURE_LIMIT
    assert bad[FAILURE_LIMIT:] == [429] * 3, "counted against the connection's address"
    assert status(url, key, "192.0.2.200") == 429, "a fresh forwarded address changes nothing"


def test_a_configured_proxy_names_the_client(api):
    url, key = api({"TASS_FORWARDED_ALLOW_IPS": "127.0.0.1"})
    bad = [status(url, "tass_bad_key", "198.51.100.7") for _ in range(FAILURE_LIMIT + 1)]
    assert bad == [401] * FAILURE_LIMIT + [429]
    assert status(url, key, "198.51.100.7") == 429, "that client is locked out"
    assert status(url, key, "198.51.100.8") == 200, "another client behind the proxy is not"
