"""The service commands' work: migrations, and the API and worker command lines and processes.

`tass.migrations` is imported lazily, inside `migrate` only: the user commands never load the server
code, and the light install (no server packages) can still run them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tass.client.errors import TassError, UsageError
from tass.operators.supervisor import Child, Outcome, Supervisor

if TYPE_CHECKING:  # the light client never loads the server packages
    from tass.migrations.runner import Upgraded

_POOL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_GPUS = re.compile(r"^\d+(,\d+)*$")


# What the server install (`pip install 'tass[server]'`) brings that the service commands need
# first; the light install (the CLI and the Python client) has none of them.
SERVER_MODULES = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "celery", "obstore")
SERVER_EXTRA_HINT = "this command runs the service: pip install 'tass[server]'"


def require_server_install() -> None:
    """Raise a `TassError` naming the `server` extra when its packages are not installed here
    (found without importing them)."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise TassError(f"{SERVER_EXTRA_HINT} (not installed here: {', '.join(missing)})")


def migrate(database_url: str | None = None) -> Upgraded | None:
    """Upgrade the database to the latest schema (`tass.migrations.runner.upgrade`); what it
    did."""
    require_server_install()
    from tass.migrations.runner import upgrade

    try:
        return upgrade(database_url)
    except Exception as exc:
        raise TassError(f"the migration failed: {type(exc).__name__}: {exc}") from exc


# uvicorn's protocol with a request-header read timeout (api/http_protocol.py), by import path
HTTP_PROTOCOL = "tass.api.http_protocol:HeaderTimeoutProtocol"


def api_command(host: str, port: int, workers: int = 1) -> list[str]:
    """The uvicorn command line serving the API (`workers` processes on one socket)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "tass.api.app:create_app",
        "--factory",
        "--http",
        HTTP_PROTOCOL,
        # the standard asyncio loop, not uvloop: saturated (more requests than CPU), uvloop
        # served some connections seconds late while others went first (256 clients: p99
        # 4.5 s beside a p50 of 44 ms); asyncio serves them in turn (docs/benchmarks.md)
        "--loop",
        "asyncio",
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to; the app trusts
        # only the proxies in TASS_FORWARDED_ALLOW_IPS (none by default: api/app.py)
        "--no-proxy-headers",
        "--host",
        host,
        "--port",
        str(port),
        *(["--workers", str(workers)] if workers > 1 else []),
    ]


def metrics_environment(workers: int) -> dict[str, str]:
    """Several API processes share their HTTP metrics through prometheus_client's multiprocess
    mode: PROMETHEUS_MULTIPROC_DIR (kept if set, else a fresh temporary folder), emptied of a
    previous run's files so counters start at zero."""
    if workers <= 1:
        return {}
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="tass-prometheus-"
    )
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):
        stale.unlink()
    return {"PROMETHEUS_MULTIPROC_DIR": folder}


WILDCARD_OR_LOOPBACK = frozenset({"", "0.0.0.0", "::", "127.0.0.1", "localhost", "::1"})


def allowed_host_environment(host: str) -> dict[str, str]:
    """TASS_ALLOWED_HOSTS with the address the API binds added, so the URL `tass up` shows is
    answered (the API answers only loopback names and TASS_ALLOWED_HOSTS); {} for a wildcard
    or loopback address (reached by names the operator lists, or always answered)."""
    if host in WILDCARD_OR_LOOPBACK:
        return {}
    name = f"[{host}]" if ":" in host and not host.startswith("[") else host
    listed = os.environ.get("TASS_ALLOWED_HOSTS", "")
    return {"TASS_ALLOWED_HOSTS": ",".join(part for part in (listed, name) if part)}


def serve_command(host: str, port: int) -> list[str]:
    """The uvicorn command line of the serving process (predictions; loopback by default)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "tass.serving.app:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--no-access-log",
    ]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (for a child process to bind right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def worker_command(queues: str | None = None, concurrency: int | None = None) -> list[str]:
    """The Celery worker command line; without `queues` the Celery app's defaults apply, and
    without `concurrency` one process per slot (TASS_WORKER_SLOTS)."""
    argv = [sys.executable, "-m", "celery", "-A", "tass.worker.app", "worker", "--loglevel", "INFO"]
    if queues:
        names = [name.strip() for name in queues.split(",") if name.strip()]
        if not names:
            raise UsageError(f"--queues {queues!r}: expected Q1,Q2")
        argv += ["-Q", ",".join(names)]
    if concurrency is not None:
        argv += ["-c", str(concurrency)]
    return [*argv, "--pool", "prefork"]


def gpu_env(gpus: str | None) -> dict[str, str]:
    """CUDA_VISIBLE_DEVICES for `--gpus 0,1` (`--gpus none` hides every GPU); {} when not given."""
    if gpus is None:
        return {}
    value = gpus.replace(" ", "")
    if value.lower() in ("", "none"):
        return {"CUDA_VISIBLE_DEVICES": ""}
    if not _GPUS.match(value):
        raise UsageError(f"--gpus {gpus!r}: expected GPU indices like 0,1 (or none)")
    return {"CUDA_VISIBLE_DEVICES": value}


def slots_env(slots: int | None, gpus: str | None, pool: str | None) -> dict[str, str]:
    """TASS_WORKER_SLOTS and TASS_WORKER_POOL for `tass worker --slots/--pool` (`--gpus 0,1`
    without --slots: one slot per GPU); {} for what is not given."""
    env = {}
    if slots is None and gpus and gpus.strip().lower() != "none":
        slots = len([g for g in gpus.split(",") if g.strip()])
    if slots is not None:
        env["TASS_WORKER_SLOTS"] = str(slots)
    if pool is not None:
        if not _POOL.match(pool):
            raise UsageError(f"--pool {pool!r}: expected letters, digits, '_', '.' or '-'")
        env["TASS_WORKER_POOL"] = pool
    return env


def connect_url(host: str, port: int) -> str:
    """The URL to reach a server bound to `host` (a wildcard address means this machine)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def answers(url: str) -> bool:
    """True when GET `url` answers 2xx."""
    try:
        return httpx.get(url, timeout=2.0).is_success
    except httpx.HTTPError:
        return False


def run_services(
    children: Sequence[Child],
    health_url: str,
    *,
    on_ready: Callable[[], None],
    report: Callable[[str], None],
    ready_timeout: float = 120.0,
    stop_timeout: float = 20.0,
    is_healthy: Callable[[str], bool] = answers,
) -> int:
    """Run `children` together until a stop signal (exit 0) or until one of them exits (the
    others are stopped; exit 1). `on_ready` runs once `health_url` answers; if it does not within
    `ready_timeout` seconds everything is stopped (exit 1). `report` receives status messages."""

    def restarted(name: str) -> None:
        report(f"the {name} stopped after a SIGTERM; starting it again")

    with Supervisor(children, stop_timeout=stop_timeout, on_restart=restarted) as supervisor:
        outcome = supervisor.wait(lambda: is_healthy(health_url), timeout=ready_timeout)
        if outcome is Outcome.READY:
            on_ready()
            outcome = supervisor.wait()
        if outcome is Outcome.STOP_REQUESTED:
            report("stopping (press Ctrl-C again to kill at once)")
            supervisor.stop()
            return 0
        if outcome is Outcome.TIMED_OUT:
            report(f"{health_url} did not answer within {ready_timeout:g}s; stopping")
            supervisor.stop()
            return 1
        name, code = supervisor.exited() or ("?", 1)
        others = [child.name for child in children if child.name != name]
        report(f"the {name} exited with status {code}; stopping the {', '.join(others) or '-'}")
        supervisor.stop()
        return 1
