"""Adds the operator commands to the `tass` app (the `tass.cli` entry point in pyproject.toml)."""

from __future__ import annotations

import typer

from tass.operators import service_cli
from tass.operators.gc_cli import gc
from tass.operators.keys_cli import keys_app

# The rich help panel of the commands that run or administer the service.
SERVICE_PANEL = "Service (run the server side)"


def register(app: typer.Typer) -> None:
    """Add `keys`, `gc`, `migrate`, `api`, `serve`, `worker` and `up` to `app`."""
    app.add_typer(keys_app, name="keys", rich_help_panel=SERVICE_PANEL)
    app.command("gc", rich_help_panel=SERVICE_PANEL)(gc)
    app.command("migrate", rich_help_panel=SERVICE_PANEL)(service_cli.migrate)
    app.command("api", rich_help_panel=SERVICE_PANEL)(service_cli.api)
    app.command("serve", rich_help_panel=SERVICE_PANEL)(service_cli.serve)
    app.command("worker", rich_help_panel=SERVICE_PANEL)(service_cli.worker)
    app.command("up", rich_help_panel=SERVICE_PANEL)(service_cli.up)
