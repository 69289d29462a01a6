"""`tass metrics JOB`: a job's per-epoch history (every metric the trainer recorded at each
epoch's end) as a table, or as JSON rows."""

from __future__ import annotations

from typing import Annotated

import typer

from tass.client import render
from tass.client.api_client import Json, TassClient
from tass.client.cli_common import (
    UrlOption,
    make_client,
    print_json,
    stderr_console,
    stdout_console,
)

PAGE_SIZE = 1000


def epoch_rows(client: TassClient, job_id: str) -> list[Json]:
    """Every epoch row of the job, in epoch order (following the API's pages)."""
    rows: list[Json] = []
    cursor: str | None = None
    while True:
        page = client.job_metrics(job_id, kind="epoch", limit=PAGE_SIZE, cursor=cursor)
        rows.extend(page.get("items") or [])
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


def metrics(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='The rows as JSON: [{"step": EPOCH, "values": {...}}].')
    ] = False,
    url: UrlOption = None,
) -> None:
    """Print a job's per-epoch metrics: one row per epoch, one column per metric."""
    with make_client(ctx, url) as client:
        client.get_job(job_id)  # a missing job is a clear 404, not an empty table
        rows = epoch_rows(client, job_id)
    if as_json:
        print_json(rows)
    elif rows:
        stdout_console().print(render.epoch_metrics_table(rows))
    else:
        stderr_console().print(f"no epoch metrics recorded for job {job_id} yet")
