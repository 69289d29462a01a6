"""The embedded service for end-to-end tests: `tass up` (SQLite, local artifacts, SQLite-backed
queue) in a folder of its own, and the `tass` CLI run against it as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import REPO, Service, free_port, service_env, wait_http


def tass_command(*args: str) -> list[str]:
    """`tass ARGS...` as a command line (the CLI of this checkout)."""
    return [sys.executable, "-m", "tass.client", *args]


@dataclass
class Embedded:
    """A running `tass up` in `root`: its data in root/d, its admin key in root/credentials.json."""

    root: Path
    url: str
    env: dict[str, str]  # the TASS_* settings `tass up` and the `tass` commands run with
    service: Service

    def key(self) -> str:
        """The admin key `tass up` created on its first start and stored for its URL."""
        return json.loads((self.root / "credentials.json").read_text())["keys"][self.url]

    def api(self) -> httpx.Client:
        """An HTTP client for the API, with the admin key."""
        headers = {"Authorization": f"Bearer {self.key()}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def tass(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `tass ARGS...` against this service (TASS_URL set, the stored key found)."""
        return subprocess.run(
            tass_command(*args),
            cwd=REPO,
            env=service_env({**self.env, "TASS_URL": self.url}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        self.service.stop()


def start_embedded(root: Path, port: int | None = None, **settings: str) -> Embedded:
    """Start `tass up` on `port` (default: a free one) with data in root/d and wait until it
    answers; `settings` are extra TASS_* variables. Starting again on the same root and port
    restarts the same service (a new log file each time)."""
    port = port or free_port()
    env = {
        "TASS_CREDENTIALS_FILE": str(root / "credentials.json"),
        "TASS_HEARTBEAT_SECONDS": "1",
        "HOME": str(root),
        **settings,
    }
    argv = tass_command("up", "--port", str(port), "--data-dir", str(root / "d"))
    service = Service(f"tass-up-{time.monotonic_ns()}", argv, env, root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", service, timeout=120)
    except BaseException:
        service.stop()
        raise
    return Embedded(root, url, env, service)


@contextmanager
def running_embedded(root: Path, **settings: str) -> Iterator[Embedded]:
    """`start_embedded`, stopped at the end."""
    embedded = start_embedded(root, **settings)
    try:
        yield embedded
    finally:
        embedded.stop()
