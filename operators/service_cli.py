"""`tass migrate|api|serve|worker|up`: run the service itself (the server side).

They need the server install (`pip install 'tass[server]'`, or `[cpu]`/`[gpu]` to train): each
checks for it first and says so, instead of failing on an import in a child process.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from tass.client.api_client import DEFAULT_URL, URL_ENV
from tass.client.cli_common import stderr_console
from tass.client.credentials import credentials_path
from tass.operators import service
from tass.operators.keys_cli import ensure_admin_key
from tass.operators.supervisor import AFTER_SIGTERM, Child, run_child


def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(help="Database URL [default: $TASS_DATABASE_URL, else the embedded one]."),
    ] = None,
) -> None:
    """Upgrade the database schema to the latest version; says which migrations it applied."""
    upgraded = service.migrate(database_url)
    err = stderr_console()
    if upgraded is None or not upgraded.applied:
        at = f" (at {upgraded.after})" if upgraded is not None and upgraded.after else ""
        err.print(f"the database schema is up to date{at}; nothing to apply")
        return
    start = f"the schema at {upgraded.before}" if upgraded.before else "an empty database"
    count = len(upgraded.applied)
    err.print(f"applied {count} migration{'s' if count > 1 else ''} to {start}:")
    for revision, description in upgraded.applied:
        err.print(f"  {revision}  {description}", markup=False)
    err.print(f"the database schema is now at {upgraded.after}")


def api(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes (uvicorn workers) on the port; /metrics sums them all "
            "(PROMETHEUS_MULTIPROC_DIR). About one per CPU core.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (uvicorn) until stopped."""
    service.require_server_install()
    env = {**service.metrics_environment(workers), **service.allowed_host_environment(host)}
    child = Child("api", service.api_command(host, port, workers), env)
    raise typer.Exit(run_child(child))


def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep it private).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (the API's TASS_SERVE_URL).")] = 8100,
) -> None:
    """Run the serving process that answers predictions for the API, until stopped."""
    service.require_server_install()
    raise typer.Exit(run_child(Child("serving", service.serve_command(host, port))))


def worker(
    queues: Annotated[
        str | None, typer.Option(help="Queues to consume, Q1,Q2 [default: the app's].")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPUs to use, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES; none hides all)."),
    ] = None,
    slots: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Jobs this worker runs at once (CPU slots) [default: TASS_WORKER_SLOTS, 1; "
            "with --gpus: one per GPU].",
        ),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option(help="The pool this worker serves (jobs ask for it) [default: default]."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Worker processes [default: slots]."),
    ] = None,
) -> None:
    """Run a Celery worker that trains and evaluates the jobs the scheduler places on it."""
    service.require_server_install()
    argv = service.worker_command(queues, concurrency)
    env = {**service.gpu_env(gpus), **service.slots_env(slots, gpus, pool)}
    raise typer.Exit(run_child(Child("worker", argv, env)))


def _cli_hint() -> str | None:
    """How to reach this `tass` from another shell when plain `tass` is not it (a venv not
    activated): the start-up logs scroll `scripts/run.sh`'s own note away, this line stays."""
    here = Path(sys.executable).parent / "tass"
    found = shutil.which("tass")
    if not here.exists() or (found is not None and Path(found).resolve() == here.resolve()):
        return None
    return f"the tass CLI is {here} (not on PATH; or: source {here.parent / 'activate'})"


def _announce(base: str, new_key: str | None) -> None:
    """What `tass up` prints once the API answers: where it is, and a first admin key."""
    err = stderr_console()
    err.print(
        f"tass is up at {base}  (dashboard: {base}/dashboard; API docs, once logged in "
        f"there: {base}/docs)",
        style="bold green",
    )
    if base != DEFAULT_URL:
        err.print(f"use it with: export {URL_ENV}={base}", style="dim")
    if hint := _cli_hint():
        err.print(hint, style="dim", soft_wrap=True)
    if new_key:
        err.print(f"admin API key (shown once, saved to {credentials_path()}):")
        err.print(new_key, style="bold", soft_wrap=True)
    err.print("press Ctrl-C to stop", style="dim")


def up(
    host: Annotated[str, typer.Option(help="Address for the API to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Folder for the embedded database, queue and artifacts (sets TASS_DATA_DIR).",
        ),
    ] = None,
    ready_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for the API to answer.")
    ] = 120.0,
    stop_timeout: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait for a clean stop before killing.")
    ] = 20.0,
    serve_port: Annotated[
        int | None,
        typer.Option(help="Loopback port of the serving process [default: a free one]."),
    ] = None,
) -> None:
    """Run the whole service here: migrate, then the API, one worker and the serving process
    (predictions), until Ctrl-C.

    Needs no other server: by default the database and the queue are files in the data dir.
    """
    service.require_server_install()
    if data_dir is not None:
        os.environ["TASS_DATA_DIR"] = str(data_dir.expanduser().resolve())
    service.migrate()
    base = service.connect_url(host, port)
    new_key = ensure_admin_key(base)
    # the serving process listens on a free loopback port the API is told about
    serve_port = serve_port or service.free_port()
    os.environ["TASS_SERVE_URL"] = f"http://127.0.0.1:{serve_port}"
    children = [
        Child("api", service.api_command(host, port), service.allowed_host_environment(host)),
        Child("worker", service.worker_command(), restart_after=AFTER_SIGTERM),
        Child("serving", service.serve_command("127.0.0.1", serve_port)),
    ]
    code = service.run_services(
        children,
        f"{base}/healthz",
        on_ready=lambda: _announce(base, new_key),
        report=lambda message: stderr_console().print(message),
        ready_timeout=ready_timeout,
        stop_timeout=stop_timeout,
    )
    raise typer.Exit(code)
