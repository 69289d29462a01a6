"""Starting real service processes (uvicorn, Celery worker) for integration tests, with the
command lines the `tass api` and `tass worker` commands run (`tass.operators.service`).

Every process started here (and all it starts) ends when the test process ends, even by kill -9:
a reaper process watches the test process (tests/support/reaper.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tass.migrations.runner import upgrade
from tass.operators.service import api_command, free_port, worker_command
from tests.support.reaper import MARKER

REPO = Path(__file__).resolve().parents[2]


class Reaper:
    """This process's end of the reaper: it tells the reaper what to clean up when we are gone
    (the reaper runs in a session of its own, so a signal to our process group spares it)."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("reaper.py")), self.token],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )

    def tell(self, line: str) -> None:
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(f"{line}\n".encode())
            self.proc.stdin.flush()

    def env(self) -> dict[str, str]:
        """The variable that marks a process (and its descendants) as ours to reap."""
        return {MARKER: self.token}


_reaper: Reaper | None = None


def reaper() -> Reaper:
    """The reaper of this process, started on first use (again in a forked child)."""
    global _reaper
    if _reaper is None or _reaper.pid != os.getpid():
        _reaper = Reaper()
    return _reaper


def service_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any TASS_ setting, plus `extra`: children see
    exactly the configuration the test chose."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TASS_")}
    return {**base, **extra}


def sqlite_service_settings(folder: Path) -> tuple[str, dict[str, str]]:
    """A migrated SQLite database in `folder`, and the TASS_* settings of a service that keeps
    all its state there (database, SQLite-backed queue, artifacts): the database URL and them."""
    database = f"sqlite:///{folder / 'tass.db'}"
    upgrade(database)
    return database, {
        "TASS_DATA_DIR": str(folder),
        "TASS_DATABASE_URL": database,
        "TASS_BROKER_URL": f"sqla+sqlite:///{folder / 'broker.db'}",
        "TASS_ARTIFACT_URL": (folder / "artifacts").resolve().as_uri(),
    }


class Service:
    """A child process in a process group of its own whose output goes to a log file the test
    can show on failure; the reaper ends its group and descendants if the test process dies."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._reaper = reaper()
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **env, **self._reaper.env()},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reaper.tell(f"+{self.proc.pid}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20, signum: int = signal.SIGTERM) -> None:
        """Send `signum` to the process group, SIGKILL it after `timeout` seconds."""
        if self.alive():
            os.killpg(self.proc.pid, signum)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self._reaper.tell(f"-{self.proc.pid}")


def start_api(env: dict[str, str], log_dir: Path) -> tuple[Service, str]:
    """The API as `tass api` runs it, on a free loopback port; returns it and its URL."""
    port = free_port()
    service = Service("api", api_command("127.0.0.1", port), env, log_dir)
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", service)
    return service, url


def start_worker(env: dict[str, str], log_dir: Path, name: str = "worker") -> Service:
    """A Celery worker as `tass worker` runs it, named `name` (one process)."""
    return Service(name, [*worker_command(), "--hostname", f"{name}@%h"], env, log_dir)


def wait_http(url: str, service: Service, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited:\n{service.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer:\n{service.log_tail()}")


def wait_for_status(
    client: httpx.Client, job_id: str, statuses: set[str], timeout: float, *services: Service
) -> dict:
    """Poll a job until it reaches one of `statuses`; fail with the service logs if not."""
    deadline = time.monotonic() + timeout
    job: dict = {}
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.3)
    logs = "\n".join(f"--- {s.name}\n{s.log_tail()}" for s in services)
    raise TimeoutError(f"job {job_id} stuck at {job.get('status')}: {job}\n{logs}")


@contextmanager
def api_on_protocol(root: Path, protocol: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    """The API on SQLite under `root` as `tass api` starts it, speaking HTTP through
    `api.http_protocol:<protocol>` with these settings; yields its (host, port)."""
    _, settings = sqlite_service_settings(root)
    port = free_port()
    args = api_command("127.0.0.1", port)
    args[args.index("--http") + 1] = f"api.http_protocol:{protocol}"
    service = Service("api", args, {**settings, **env}, root)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", service)
        yield "127.0.0.1", port
    finally:
        service.stop()
