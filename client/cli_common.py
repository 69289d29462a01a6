"""What every `tass` command shares: the per-invocation state, the common options, the consoles,
the command group that reports errors, the client factory and JSON/page printing. Commands call
the API only through `TassClient` methods, which escape every id they put in a path.

Exit codes: 0 success, 1 an error (or a watched job that failed), 2 a usage error, 130 Ctrl-C.
Errors are printed as one message on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup

from tass.client.api_client import URL_ENV, Json, TassClient
from tass.client.errors import TassError


@dataclass
class CliState:
    """Per-invocation settings (tests pass one as `obj` to plug in an httpx transport)."""

    url: str | None = None
    transport: httpx.BaseTransport | None = None


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"API base URL (overrides `tass --url` and ${URL_ENV}).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the JSON the API returned.")]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.0, help="Seconds between polls while watching.")
]
CursorOption = Annotated[
    str | None, typer.Option(help="Continue from a previous page (its `more: --cursor` hint).")
]


def stdout_console() -> Console:
    """The console for results; piped output is not folded at 80 columns."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200
    return console


def stderr_console() -> Console:
    """The console for messages, progress and errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


class ErrorReportingGroup(TyperGroup):
    """The `tass` command group: whatever runs below it (a command, a group callback, an option
    callback) and raises a `TassError` prints `error: ...` on stderr and exits with the error's
    code; Ctrl-C exits 130. No command needs a handler of its own."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except TassError as exc:
            stderr_console().print(Text.assemble(("error: ", "bold red"), str(exc)))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr_console().print("interrupted")
            raise typer.Exit(130) from None


def make_client(ctx: typer.Context, url: str | None) -> TassClient:
    """The client for this invocation: `--url`, else `tass --url`/$TASS_URL; the transport
    tests plug in through `CliState`."""
    state = ctx.ensure_object(CliState)
    return TassClient(url or state.url, transport=state.transport)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def print_page(page: Json, as_json: bool, table: Callable[[list[Json]], Any], empty: str) -> None:
    """One page of a listing: JSON as is, else a table (or `empty`) and the next-page hint."""
    if as_json:
        print_json(page)
        return
    items = page.get("items") or []
    if items:
        stdout_console().print(table(items))
    else:
        stderr_console().print(empty)
    if page.get("next_cursor"):
        stderr_console().print(f"more: --cursor {page['next_cursor']}", style="dim")
