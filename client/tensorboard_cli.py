"""`tass tensorboard JOB [JOB...] [--sweep ID]`: download jobs' TensorBoard event files into
one log folder, one run folder per job (per trial for a sweep), and run TensorBoard on it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated
from urllib.parse import quote

import typer

from tass.client.api_client import Json, TassClient
from tass.client.cli_common import UrlOption, make_client, stderr_console
from tass.client.errors import ApiError, TassError

MAX_ZIP_BYTES = 128 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def run_name(job: Json, trial: int | None = None) -> str:
    """A run folder name TensorBoard lists: the trial number or the job's name, and its id."""
    label = f"trial-{trial:03d}" if trial is not None else (job.get("name") or "job")
    return f"{_UNSAFE.sub('-', str(label)).strip('-') or 'job'}-{job['id'][:8]}"


def extract_zip(data: bytes, dest: Path) -> list[Path]:
    """Unpack the event files below `dest`; a member that would land outside it is refused."""
    written = []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for member in archive.infolist():
            if member.is_dir():
                continue
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if member.filename.startswith("/") or ".." in parts or not parts:
                raise TassError(f"unsafe path {member.filename!r} in the TensorBoard zip")
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))
            written.append(target)
    return written


def download_run(client: TassClient, job_id: str, dest: Path) -> list[Path]:
    """Download the job's (latest attempt's) event files into `dest`, sha256-checked."""
    response = client.request("GET", f"/v1/jobs/{quote(job_id, safe='')}/tensorboard")
    data = response.content
    if len(data) > MAX_ZIP_BYTES:
        raise TassError(f"job {job_id}: TensorBoard zip of {len(data)} bytes is too large")
    announced = response.headers.get("X-Checksum-Sha256")
    if announced and hashlib.sha256(data).hexdigest() != announced:
        raise TassError(f"job {job_id}: TensorBoard zip does not match its sha256")
    return extract_zip(data, dest)


def sweep_trials(client: TassClient, sweep_id: str) -> list[tuple[str, int]]:
    sweep = client.request("GET", f"/v1/sweeps/{quote(sweep_id, safe='')}").json()
    return [(trial["job_id"], int(trial["number"])) for trial in sweep.get("trials", [])]


def download_runs(
    client: TassClient, job_ids: list[str], sweep: str | None, logdir: Path
) -> list[Path]:
    """One run folder per job under `logdir`; jobs without event files are reported."""
    wanted: list[tuple[str, int | None]] = [(job_id, None) for job_id in job_ids]
    if sweep:
        wanted += sweep_trials(client, sweep)
    console = stderr_console()
    runs = []
    for job_id, trial in wanted:
        job = client.get_job(job_id)
        folder = logdir / run_name(job, trial)
        try:
            download_run(client, job["id"], folder)
        except ApiError as exc:
            if exc.status_code != 404:
                raise
            console.print(f"job {job_id}: no TensorBoard files ({job.get('status')})")
            continue
        runs.append(folder)
    return runs


def tensorboard(
    ctx: typer.Context,
    job_ids: Annotated[list[str] | None, typer.Argument(help="Training jobs.")] = None,
    sweep: Annotated[
        str | None, typer.Option("--sweep", help="Also every trial of this sweep.")
    ] = None,
    logdir: Annotated[
        Path | None, typer.Option("--logdir", help="Where to put them (default: a temp folder).")
    ] = None,
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 6006,
    download_only: Annotated[
        bool, typer.Option("--download-only", help="Download, print the folder, do not run.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Download jobs' TensorBoard event files and run TensorBoard on them (Ctrl-C stops)."""
    if not job_ids and not sweep:
        raise typer.BadParameter("name at least one job or --sweep", param_hint="JOB_IDS")
    folder = logdir or Path(tempfile.mkdtemp(prefix="tass-tensorboard-"))
    with make_client(ctx, url) as client:
        runs = download_runs(client, list(job_ids or []), sweep, folder)
    if not runs:
        raise TassError("none of these jobs has TensorBoard files")
    typer.echo(str(folder))
    if download_only:
        return
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(command, check=False)
