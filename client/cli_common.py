"""What every `tass` command shares: the per-invocation state, the common options, the consoles,
the error handler, the client factory and JSON/page printing.

Exit codes: 0 success, 1 an error (or a watched job that failed), 2 a usage error, 130 Ctrl-C.
Errors are printed as one message on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console
from rich.text import Text

from tass.client.api_client import URL_ENV, Json, TassClient
from tass.client.errors import TassError

P = ParamSpec("P")
R = TypeVar("R")

# The rich help panel of the commands that run or administer the service.
SERVICE_PANEL = "Service (run the server side)"


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


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a `TassError` as `error: ...` on stderr and exit with its code; Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except TassError as exc:
            stderr_console().print(Text.assemble(("error: ", "bold red"), str(exc)))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            stderr_console().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def make_client(ctx: typer.Context, url: str | None) -> TassClient:
    """The client for this invocation: `--url`, else `tass --url`/$TASS_URL; the transport
    tests plug in through `CliState`."""
    state = ctx.ensure_object(CliState)
    return TassClient(url or state.url, transport=state.transport)


def call_api(
    ctx: typer.Context, url: str | None, method: str, path: str, body: Any = None, **params: Any
) -> Any:
    """One API call with this invocation's client (`make_client`); its JSON answer."""
    with make_client(ctx, url) as client:
        return request_json(client, method, path, body, **params)


def request_json(
    client: TassClient, method: str, path: str, body: Any = None, **params: Any
) -> Any:
    """One API call's JSON answer (None for an empty one, e.g. 204)."""
    response = client.request(method, path, json=body, params=params or None)
    return response.json() if response.content else None


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
