"""`tass registry`: model names with numbered versions and aliases (`NAME@ALIAS`,
`NAME:VERSION` work wherever a model id does: `tass download`, `tass submit evaluate`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tass.client import render
from tass.client.api_client import Json
from tass.client.cli_common import (
    CursorOption,
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    print_page,
    stdout_console,
)
from tass.client.errors import TassError
from tass.client.specs import parse_tags

registry_app = typer.Typer(
    help="The model registry: names, versions, aliases such as production.",
    no_args_is_help=True,
)


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


@registry_app.command("list")
def list_names(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many names (in name order).")] = 50,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Registered model names with their latest version and aliases."""
    with make_client(ctx, url) as client:
        page = client.list_registry(limit=limit, cursor=cursor)
    print_page(page, as_json, names_table, "no registered models")


@registry_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered name.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Every version of a name: its model, metrics, training job and dataset, and aliases."""
    with make_client(ctx, url) as client:
        registered = client.get_registered(name)
    if as_json:
        print_json(registered)
        return
    heading = Text.assemble((registered["name"], "bold"))
    if registered.get("description"):
        heading.append(f": {registered['description']}")
    tags = " ".join(f"{k}={v}" for k, v in (registered.get("tags") or {}).items())
    parts: list[Any] = [heading, *([Text(f"tags: {tags}")] if tags else [])]
    stdout_console().print(Group(*parts, versions_table(registered)))


@registry_app.command("register")
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
        update["tags"] = parse_tags(tag)
    with make_client(ctx, url) as client:
        created = client.register_version(name, model)
        if update:
            client.update_registered(name, update)
    if as_json:
        print_json(created)
        return
    note = "" if created["created"] else " (already registered)"
    typer.echo(f"{name} version {created['version']}: model {created['model_id']}{note}")


@registry_app.command("alias")
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
    with make_client(ctx, url) as client:
        if delete:
            client.delete_alias(name, alias_name)
            typer.echo(f"{name}@{alias_name} removed")
            return
        assert version is not None
        moved = client.set_alias(name, alias_name, version)
    typer.echo(f"{name}@{alias_name} -> version {moved['version']} (model {moved['model_id']})")


@registry_app.command("delete-version")
def delete_version(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The registered name.")],
    version: Annotated[int, typer.Argument(min=1, help="The version to remove.")],
    url: UrlOption = None,
) -> None:
    """Remove VERSION from NAME (refused while an alias points at it); the model stays."""
    with make_client(ctx, url) as client:
        client.delete_version(name, version)
    typer.echo(f"{name} version {version} removed")
