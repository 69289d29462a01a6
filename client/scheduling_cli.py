"""`tass queue`, `tass pools`, `tass tenants show|set` and `tass workers list|drain|undrain`:
what waits and why, each pool's capacity and use, and an admin's scheduling controls."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from tass.client import render
from tass.client.cli_common import (
    CursorOption,
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    print_page,
    stderr_console,
    stdout_console,
)
from tass.client.errors import UsageError

PRIORITIES = ("low", "normal", "high", "urgent")

tenants_app = typer.Typer(help="Tenants' scheduling settings (admin).", no_args_is_help=True)
workers_app = typer.Typer(help="Worker nodes: list them, drain them (admin).", no_args_is_help=True)
TenantArgument = Annotated[str, typer.Argument(help="The tenant.")]
WorkerArgument = Annotated[str, typer.Argument(help="The worker's name (tass workers list).")]


def queue(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many jobs (first in line first).")] = 50,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The jobs waiting to be placed, in scheduling order, with why each waits (a tenant sees
    its own, an admin all)."""
    with make_client(ctx, url) as client:
        page = client.queue(limit=limit, cursor=cursor)
    print_page(page, as_json, render.queue_table, "no job is waiting")


def pools(ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """Each pool's live workers, their devices used and free, and the jobs waiting for it."""
    with make_client(ctx, url) as client:
        body = client.pools()
    if as_json:
        print_json(body)
        return
    if body.get("pools"):
        stdout_console().print(render.pools_table(body["pools"]))
    else:
        stderr_console().print("no live worker and no job waiting for a pool")
    stderr_console().print(f"jobs waiting for any pool: {body.get('waiting_any_pool', 0)}")


def parse_quota(values: list[str]) -> dict[str, int]:
    """`POOL=N` strings as {pool: N}; a usage error names the bad one."""
    quota = {}
    for value in values:
        pool, sep, count = value.partition("=")
        if not sep or not pool or not count.strip().isdigit():
            raise UsageError(f"--gpu-quota {value!r}: expected POOL=N (N a whole number >= 0)")
        quota[pool] = int(count)
    return quota


@tenants_app.command("show")
def show_tenant(
    ctx: typer.Context, tenant: TenantArgument, as_json: JsonOption = False, url: UrlOption = None
) -> None:
    """A tenant's weight, highest priority class and GPU quota per pool."""
    with make_client(ctx, url) as client:
        body = client.get_tenant(tenant)
    if as_json:
        print_json(body)
    else:
        stdout_console().print(render.tenant_details(body))


@tenants_app.command("set")
def set_tenant(
    ctx: typer.Context,
    tenant: TenantArgument,
    weight: Annotated[
        float | None, typer.Option(help="Its weight in the fair share (default 1).")
    ] = None,
    max_priority: Annotated[
        str | None,
        typer.Option(help=f"The highest class it may use: {', '.join(PRIORITIES)}."),
    ] = None,
    gpu_quota: Annotated[
        list[str] | None,
        typer.Option(metavar="POOL=N", help="Most GPUs it may hold at once in POOL (repeatable)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Set a tenant's scheduling settings (admin); what is not given keeps its value."""
    settings: dict[str, object] = {}
    if weight is not None:
        settings["weight"] = weight
    if max_priority is not None:
        settings["max_priority"] = max_priority
    if gpu_quota:
        settings["gpu_quota"] = parse_quota(gpu_quota)
    if not settings:
        raise UsageError("nothing to set: give --weight, --max-priority or --gpu-quota")
    with make_client(ctx, url) as client:
        body = client.set_tenant(tenant, settings)
    if as_json:
        print_json(body)
    else:
        stdout_console().print(render.tenant_details(body))


@workers_app.command("list")
def list_workers(ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """Worker nodes seen in the last day: pool, devices, draining, alive."""
    with make_client(ctx, url) as client:
        body = client.list_workers()
    if as_json:
        print_json(body)
        return
    stdout_console().print(render.workers_table(body.get("workers") or []))


@workers_app.command("drain")
def drain(
    ctx: typer.Context,
    name: WorkerArgument,
    preempt: Annotated[
        bool,
        typer.Option(
            "--preempt",
            help="Also move its train jobs now: they checkpoint, wait again and resume elsewhere.",
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Place nothing new on the worker (admin); its jobs finish unless --preempt."""
    with make_client(ctx, url) as client:
        body = client.drain_worker(name, preempt=preempt)
    if as_json:
        print_json(body)
        return
    moved = body.get("preempted") or []
    line = Text(f"worker {name}: draining")
    if moved:
        line.append(f"; moving {len(moved)} job(s): {' '.join(moved)}")
    stdout_console().print(line)


@workers_app.command("undrain")
def undrain(
    ctx: typer.Context, name: WorkerArgument, as_json: JsonOption = False, url: UrlOption = None
) -> None:
    """Let the worker take new placements again (admin)."""
    with make_client(ctx, url) as client:
        body = client.undrain_worker(name)
    if as_json:
        print_json(body)
    else:
        stdout_console().print(f"worker {name}: taking jobs")
