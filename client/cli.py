"""The `tass` command line: submit and follow jobs over HTTP, download models, run the service.

Each command group lives in its own module (`jobs_cli`, `metrics_cli`, `sweep_cli`,
`registry_cli`, `webhooks_cli`, `predict_cli`, ...); this one registers them. What they share
(options, error handling, the client) is in `cli_common`. The operator commands (`up`, `api`,
`worker`, `serve`, `migrate`, `keys`, `gc`) live in `tass.operators` and join the app through the
`tass.cli` entry point group: this package never imports them.

Exit codes: 0 success (a watched job succeeded), 1 an error or a job that failed or was
cancelled, 2 a usage error. Errors are printed as one message on stderr, never a traceback.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Annotated

import typer

from tass.client import jobs_cli
from tass.client.api_client import DEFAULT_URL, URL_ENV
from tass.client.cli_common import CliState, ErrorReportingGroup
from tass.client.datasets_cli import datasets_app
from tass.client.logs_cli import logs
from tass.client.metrics_cli import metrics
from tass.client.predict_cli import predict
from tass.client.registry_cli import registry_app
from tass.client.scheduling_cli import pools, queue, tenants_app, workers_app
from tass.client.sweep_cli import sweep_app
from tass.client.tensorboard_cli import tensorboard
from tass.client.webhooks_cli import webhooks_app

__all__ = ["CliState", "app", "main"]

app = typer.Typer(
    name="tass",
    help="Training as a service: submit Keras training and evaluation jobs, follow them, "
    "download the models, and run the service itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=ErrorReportingGroup,
)

# jobs and models
app.add_typer(jobs_cli.submit_app, name="submit")
app.command("list")(jobs_cli.list_jobs)
app.command("status")(jobs_cli.status)
app.command("events")(jobs_cli.events)
app.command("cancel")(jobs_cli.cancel)
app.command("metrics")(metrics)
app.command("logs")(logs)
app.command("tensorboard")(tensorboard)
app.command("models")(jobs_cli.models)
app.command("download")(jobs_cli.download)
app.add_typer(sweep_app, name="sweep")
app.add_typer(registry_app, name="registry")
app.command("predict")(predict)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(datasets_app, name="datasets")
app.command("queue")(queue)
app.command("pools")(pools)
app.add_typer(tenants_app, name="tenants")
app.add_typer(workers_app, name="workers")

# Commands other packages add: each entry point of this group names a function that takes the
# app (`tass.operators.cli:register` adds the operator commands; pyproject.toml declares it).
COMMAND_PLUGINS = "tass.cli"


def _add_plugin_commands(app: typer.Typer) -> None:
    for plugin in sorted(entry_points(group=COMMAND_PLUGINS), key=lambda entry: entry.name):
        plugin.load()(app)


_add_plugin_commands(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"tass {version('tass')}")
        except PackageNotFoundError:
            typer.echo("tass (not installed as a package)")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar=URL_ENV, help=f"API base URL [default: {DEFAULT_URL}]"),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Set the API URL for the commands below (they also take --url)."""
    state = ctx.ensure_object(CliState)
    if url:
        state.url = url


def main() -> None:
    """The `tass` console script."""
    app(prog_name="tass")


if __name__ == "__main__":  # pragma: no cover
    main()
