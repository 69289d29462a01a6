"""`tass logs JOB [-f] [--attempt N] [--tail N]`: what a job's process printed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tass.client.api_client import Json, TassClient
from tass.client.cli_common import UrlOption, make_client

FOLLOW_WAIT_SECONDS = 20.0  # below the client's 30 s timeout


def format_item(item: Json, *, timestamps: bool) -> str:
    prefix = f"{item.get('at', '')} " if timestamps else ""
    stream = item.get("stream")
    tag = "" if stream == "stdout" else f"[{stream}] "
    return f"{prefix}{tag}{item.get('line', '')}"


def print_log(
    client: TassClient,
    job_id: str,
    *,
    attempt: int | None,
    tail: int | None,
    follow: bool,
    timestamps: bool,
) -> None:
    """Print the job's lines (the last `tail` of them first), then, with `follow`, new lines
    as they arrive until the job is final and everything it printed has been shown."""
    page = client.job_logs(job_id, attempt=attempt, tail=tail)
    while True:
        for item in page.get("items") or []:
            sys.stdout.write(format_item(item, timestamps=timestamps) + "\n")
        sys.stdout.flush()
        if page.get("finished") and not page.get("items"):
            return
        if not follow and not page.get("items"):
            return
        offset = int(page.get("next_offset") or 0)
        page = client.job_logs(
            job_id, offset=offset, attempt=attempt, follow=follow, wait=FOLLOW_WAIT_SECONDS
        )


def logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option("--attempt", min=1, help="Only this attempt's lines.")
    ] = None,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=1, max=10000, help="Start at the last N.")
    ] = None,
    timestamps: Annotated[
        bool, typer.Option("--timestamps", "-t", help="Prefix each line with its UTC time.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Print what a job's process wrote (stdout; stderr and the service's notes tagged)."""
    with make_client(ctx, url) as client:
        print_log(client, job_id, attempt=attempt, tail=tail, follow=follow, timestamps=timestamps)
