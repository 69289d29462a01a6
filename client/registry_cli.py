"""`tass registry`: model names with numbered versions and aliases (`NAME@ALIAS`,
`NAME:VERSION` work wherever a model id does: `tass download`, `tass submit evaluate`)."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from tass.client import render
from tass.client.api_client import Json
from tass.client.errors import TassError
from tass.client.sweep_cli import JsonOption, UrlOption, _call, _client, _handle_errors

registry_app = typer.Typer(
    help="The model registry: names, versions, aliases such as production.",
    no_args_is_help=True,
)


def _path(name: str, *rest: str) -> str:
    return "/".join(["/v1/registry", *(quote(part, safe="") for part in (name, *rest))])


def _console() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped output: don't fold the table at 80 columns
    return console


def _aliases_text(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))


def names_table(items: list[Json]) -> Table:
    table = Table("name", "latest", "aliases", "description", "updated")
    for item in items:
        table.add_row(
            item["name"],
            str(item.get("latest_version") or "-"),
            _aliases_text(item.get("aliases") or {}),
            item.get("description") or "",
            render.format_time(item.get("updated_at")),
        )
    return table


def versions_table(registered: Json) -> Table:
    by_version: dict[int, list[str]] = {}
    for alias, version in (registered.get("aliases") or {}).items():
        by_version.setdefault(version, []).append(alias)
    table = Table("version", "aliases", "model", "metrics", "job", "dataset", "registered")
    for row in registered.get("versions", []):
        table.add_row(
            str(row["version"]),
            ", ".join(sorted(by_version.get(row["version"], []))),
            row["model_id"],
            render.format_metrics(row.get("metrics")),
            row["job_id"],
            str((row.get("dataset") or {}).get("source", "")),
            render.format_time(row.get("created_at")),
        )
    return table


def _parse_tags(tags: list[str]) -> dict[str, str]:
    parsed = {}
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise TassError(f"--tag {tag!r}: expected KEY=VALUE")
        parsed[key] = value
    return parsed


@registry_app.command("list")
@_handle_errors
def list_names(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many names (in name order).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Continue after this name.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Registered model names with their latest version and aliases."""
    with _client(ctx, url) as client:
        page = client.request(
            "GET", "/v1/registry", params={"limit": limit, "cursor": cursor}
        ).json()
    if as_json:
        typer.echo(json.dumps(page, indent=2))
        return
    if page["items"]:
        _console().print(names_table(page["items"]))
    else:
        Console(stderr=True).print("no registered models")
    if page.get("next_cursor"):
        Console(stderr=True).print(f"more: --cursor {page['next_cursor']}")


@registry_app.command("show")
@_handle_errors
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered name.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Every version of a name: its model, metrics, training job and dataset, and aliases."""
    with _client(ctx, url) as client:
        registered = _call(client, "GET", _path(name))
    if as_json:
        typer.echo(json.dumps(registered, indent=2))
        return
    heading = Text.assemble((registered["name"], "bold"))
    if registered.get("description"):
        heading.append(f": {registered['description']}")
    tags = " ".join(f"{k}={v}" for k, v in (registered.get("tags") or {}).items())
    parts: list[Any] = [heading, *([Text(f"tags: {tags}")] if tags else [])]
    _console().print(Group(*parts, versions_table(registered)))


@registry_app.command("register")
@_handle_errors
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The name (created on first use).")],
    model: Annotated[str, typer.Argument(help="A model id, NAME@ALIAS or NAME:VERSION.")],
    description: Annotated[
        str | None, typer.Option(help="Set the name's description.", show_default=False)
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="KEY=VALUE on the name (repeatable).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Register a model as the next version of NAME; prints the version."""
    update: dict[str, Any] = {}
    if description is not None:
        update["description"] = description
    if tag:
        update["tags"] = _parse_tags(tag)
    with _client(ctx, url) as client:
        created = _call(client, "POST", _path(name, "versions"), {"model_id": model})
        if update:
            _call(client, "PATCH", _path(name), update)
    if as_json:
        typer.echo(json.dumps(created, indent=2))
        return
    note = "" if created["created"] else " (already registered)"
    typer.echo(f"{name} version {created['version']}: model {created['model_id']}{note}")


@registry_app.command("alias")
@_handle_errors
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production.")],
    version: Annotated[
        int | None, typer.Argument(min=1, help="The version it points at.", show_default=False)
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
    url: UrlOption = None,
) -> None:
    """Point NAME@ALIAS at VERSION (moving it), or remove it with --delete."""
    if delete == (version is not None):
        raise TassError("give either VERSION or --delete")
    with _client(ctx, url) as client:
        if delete:
            client.request("DELETE", _path(name, "aliases", alias_name))
            typer.echo(f"{name}@{alias_name} removed")
            return
        moved = _call(client, "PUT", _path(name, "aliases", alias_name), {"version": version})
    typer.echo(f"{name}@{alias_name} -> version {moved['version']} (model {moved['model_id']})")
