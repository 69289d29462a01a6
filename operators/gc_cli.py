"""`tass gc`: storage retention and orphan collection on demand (a server-side command, like
`tass keys`: it opens the database and the object store configured by TASS_* directly,
lazily importing `core`). Housekeeping in every worker runs the same collection on its own."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tass.operators import service


def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be deleted; delete nothing.")
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(
            help="Checkpoints a finished job keeps: all, last or last-and-best "
            "(default: $TASS_KEEP_CHECKPOINTS, else last-and-best)."
        ),
    ] = None,
) -> None:
    """Delete checkpoints past retention and orphaned objects (uploads no record names)."""
    service.require_server_install()
    from tass.core.db import make_engine, make_session_factory
    from tass.core.objectstore import ObjectStore
    from tass.core.retention import collect_garbage
    from tass.core.settings import get_settings

    settings = get_settings()
    policy = keep or settings.keep_checkpoints
    if policy not in ("all", "last", "last-and-best"):
        Console(stderr=True).print("error: --keep must be all, last or last-and-best", style="red")
        raise typer.Exit(2)
    engine = make_engine(settings.resolved_database_url)
    try:
        store = ObjectStore(settings.resolved_artifact_url)
        found = collect_garbage(
            make_session_factory(engine),
            store,
            policy,
            dry_run=dry_run,
            keep_logs_days=settings.keep_job_logs_days,
        )
    finally:
        engine.dispose()
    table = Table("key", "bytes", "why")
    for item in found:
        table.add_row(item.key, str(item.size), item.reason)
    console = Console(width=200)
    if found:
        console.print(table)
    verb = "would delete" if dry_run else "deleted"
    total = sum(item.size for item in found)
    console.print(f"{verb} {len(found)} objects, {total} bytes")
