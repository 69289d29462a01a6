"""`tass webhooks`: register an endpoint that hears when jobs and sweeps end (the signing
secret is printed once), list them, show each delivery attempt, delete one."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tass.client import render
from tass.client.api_client import Json
from tass.client.cli_common import (
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    stdout_console,
)

# The event types are the API's to list (an unknown one is refused naming the valid ones).
EVENTS_HELP = (
    "Repeat for several: job.started|succeeded|failed|cancelled, sweep.succeeded|failed|cancelled."
)
DEFAULT_EVENTS = ["job.succeeded", "job.failed", "job.cancelled"]

webhooks_app = typer.Typer(
    help="Webhooks: signed HTTP POSTs (Standard Webhooks) when jobs and sweeps end.",
    no_args_is_help=True,
)


def _print(data: Json | None, table: Table, as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        stdout_console().print(table)


@webhooks_app.command("create")
def create(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Argument(help="The http(s) URL events are POSTed to.")],
    events: Annotated[
        list[str] | None,
        typer.Option("--event", "-e", help=EVENTS_HELP),
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note for people.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Register a webhook (default events: job succeeded, failed, cancelled); prints its id
    and the signing secret, which is never shown again."""
    body = {"url": endpoint, "events": events or DEFAULT_EVENTS, "description": description}
    with make_client(ctx, url) as client:
        created = client.create_webhook(body)
    if as_json:
        print_json(created)
        return
    typer.echo(f"webhook {created['id']} -> {created['url']} ({', '.join(created['events'])})")
    typer.echo(f"secret: {created['secret']}")
    typer.echo("Store the secret now: it is not shown again. Verify each request with it.")


@webhooks_app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """Your webhooks."""
    with make_client(ctx, url) as client:
        data = client.list_webhooks()
    table = Table("id", "url", "events", "description", "created")
    for item in data["items"]:
        table.add_row(
            item["id"],
            item["url"],
            ", ".join(item["events"]),
            item.get("description") or "",
            render.format_time(item["created_at"]),
        )
    _print(data, table, as_json)


@webhooks_app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: str,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Delivery attempts of a webhook, newest first: time, event, status code, latency, error."""
    with make_client(ctx, url) as client:
        data = client.webhook_deliveries(webhook_id, limit=limit)
    table = Table("at", "event", "type", "attempt", "status", "latency ms", "error")
    for item in data["items"]:
        code = item.get("status_code")
        table.add_row(
            render.format_time(item["at"]),
            item["event_id"],
            item["event_type"],
            str(item["attempt"]),
            "-" if code is None else str(code),
            "-" if item.get("latency_ms") is None else f"{item['latency_ms']:.0f}",
            item.get("error") or "",
        )
    _print(data, table, as_json)


@webhooks_app.command("delete")
def delete(ctx: typer.Context, webhook_id: str, url: UrlOption = None) -> None:
    """Delete a webhook; its undelivered events are dropped."""
    with make_client(ctx, url) as client:
        client.delete_webhook(webhook_id)
    typer.echo(f"deleted webhook {webhook_id}")
