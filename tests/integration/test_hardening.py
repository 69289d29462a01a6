"""Hardening seen from outside the server process: big bodies cost the server no memory."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.integration

CHUNK = b"x" * 65536
FIFTY_MIB = 800 * len(CHUNK)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send(url: str, key: str, declare_length: bool) -> int:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if declare_length:
        headers["Content-Length"] = str(FIFTY_MIB)
    response = httpx.post(
        f"{url}/v1/jobs", content=(CHUNK for _ in range(800)), headers=headers, timeout=30
    )
    return response.status_code


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_50_mib_body_is_refused_with_the_server_memory_flat(api, api_key, declare_length):
    service, url = api
    before = rss_bytes(service.proc.pid)
    status = send(url, api_key, declare_length)
    grown = rss_bytes(service.proc.pid) - before
    assert status == 413
    assert grown < 16 * 1024 * 1024, f"the API grew {grown / 2**20:.1f} MiB"
    assert httpx.get(f"{url}/healthz").status_code == 200
