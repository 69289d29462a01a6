"""`tass keys`: create, list and revoke API keys (a server-side command: it opens the
database named by TASS_DATABASE_URL / TASS_DATA_DIR directly, lazily importing `core`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tass.operators import service

keys_app = typer.Typer(
    help="Manage API keys (run where the database is reachable).", no_args_is_help=True
)


@keys_app.callback()
def _require_server_install() -> None:
    # before any `tass keys` command: they open the database with the server packages
    service.require_server_install()


def _sessions():
    """The server database's sessions (imported here: the light install has none of it)."""
    from tass.core.db import make_engine, make_session_factory
    from tass.core.settings import get_settings

    return make_session_factory(make_engine(get_settings().resolved_database_url))


@keys_app.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    admin: Annotated[bool, typer.Option("--admin", help="May see every tenant.")] = False,
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from tass.core.apikeys import create_key

    try:
        with _sessions().begin() as session:
            key, plaintext = create_key(session, tenant, admin=admin, name=name)
            prefix = key.prefix
    except ValueError as exc:
        Console(stderr=True).print(f"error: {exc}", style="red")
        raise typer.Exit(2) from exc
    typer.echo(plaintext)
    Console(stderr=True).print(
        f"key {prefix} for tenant {tenant!r}{' (admin)' if admin else ''}: "
        "store it now, it is not shown again",
        style="dim",
    )


@keys_app.command("list")
def list_keys() -> None:
    """Every key's prefix, tenant, role and state (never the secret)."""
    from tass.core.apikeys import list_keys as all_keys

    with _sessions()() as session:
        rows = all_keys(session)
    table = Table("prefix", "tenant", "admin", "name", "created", "revoked")
    for key in rows:
        table.add_row(
            key.prefix,
            key.tenant,
            "yes" if key.is_admin else "",
            key.name or "",
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see `tass keys list`).")],
) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    from tass.core.apikeys import revoke_key

    with _sessions().begin() as session:
        done = revoke_key(session, prefix.removeprefix("tass_").split("_")[0])
    if not done:
        Console(stderr=True).print(f"error: no live key with prefix {prefix!r}", style="red")
        raise typer.Exit(1)
    typer.echo(f"revoked {prefix}")


def ensure_admin_key(url: str) -> str | None:
    """For `tass up`: make an admin key on first start and store it for `url` (0600 file).
    Returns the new key (to print once), or None when a stored key still works."""
    from tass.client.credentials import key_for, save_key
    from tass.core.apikeys import authenticate, create_key

    sessions = _sessions()
    stored = key_for(url)
    with sessions.begin() as session:
        if stored and authenticate(session, stored) is not None:
            return None
        _, plaintext = create_key(session, "default", admin=True, name="created by tass up")
    save_key(url, plaintext)
    return plaintext
