"""Event-stream caps on a real uvicorn (embedded SQLite): clients that hang up give their slots
back, and a key past its cap is refused while the server keeps answering everyone else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tass.migrations.runner import upgrade
from tests.support.processes import service_env, start_api
from tests.support.seed import new_api_key

pytestmark = pytest.mark.integration

CAP = 3


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(url, key, job id): the API alone on an embedded data folder, with one queued job."""
    database_url = f"sqlite:///{tmp_path / 'tass.db'}"
    upgrade(database_url)
    key = new_api_key(database_url, "streams")
    env = service_env(
        {
            "TASS_DATA_DIR": str(tmp_path),
            "TASS_SSE_MAX_STREAMS_PER_KEY": str(CAP),
            "TASS_SSE_POLL_SECONDS": "0.1",
            "TASS_SSE_STREAM_LIFETIME_SECONDS": "60",
        }
    )
    service, url = start_api(env, tmp_path)
    try:
        body = {"type": "train", "dataset": {"source": "synthetic", "num_examples": 100}}
        response = httpx.post(
            f"{url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert response.status_code == 202, response.text
        yield url, key, response.json()["id"]
    finally:
        service.stop()


def open_streams(
    stack: ExitStack, client: httpx.Client, job_id: str, count: int
) -> list[Iterator[str]]:
    """Open `count` streams and read each one's first line (so each is really live); keep the
    returned line iterators: dropping one closes its stream."""
    readers = []
    for _ in range(count):
        response = stack.enter_context(client.stream("GET", f"/v1/jobs/{job_id}/events"))
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith(("event:", "id:"))
        readers.append(lines)
    return readers


def stream_status(client: httpx.Client, job_id: str) -> int:
    """The status code of a new stream, which is then closed at once."""
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        return response.status_code


def test_hung_up_streams_free_their_slots_and_the_cap_refuses_only_that_key(embedded):
    url, key, job_id = embedded
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(10, read=30)) as client:
        with ExitStack() as stack:
            held = open_streams(stack, client, job_id, CAP)
            refused = client.get(f"/v1/jobs/{job_id}/events")
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert client.get(f"/v1/jobs/{job_id}").status_code == 200
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
            assert len(held) == CAP
        # the client hung up on all of them: the server notices and frees the slots
        deadline = time.monotonic() + 10
        while stream_status(client, job_id) == 429:
            assert time.monotonic() < deadline, "closed streams still count against the cap"
            time.sleep(0.2)
        with ExitStack() as stack:
            assert len(open_streams(stack, client, job_id, CAP)) == CAP
