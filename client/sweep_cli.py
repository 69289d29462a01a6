"""`tass sweep`: create a hyperparameter sweep from a YAML (or JSON) file, follow its trials,
print its best trial, cancel it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tass.client import render
from tass.client.api_client import Json, TassClient
from tass.client.cli_common import (
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    stdout_console,
)
from tass.client.errors import ServerUnreachable
from tass.client.specs import load_spec_file
from tass.contract.statuses import FINAL_STATUSES, SWEEP_FINAL_STATUSES, SweepStatus

sweep_app = typer.Typer(
    help="Hyperparameter sweeps: many trials, early stopping, the best model out.",
    no_args_is_help=True,
)
SweepIdArgument = Annotated[str, typer.Argument(help="The sweep.")]


def read_sweep_file(path: Path) -> dict[str, Any]:
    """The sweep request from a YAML or JSON file, read by the same YAML 1.2 rules as job
    specs (PyYAML's own rules would read `1e-06` as a string)."""
    return load_spec_file(path)


def _value(value: Any) -> str:
    return "" if value is None else render.format_number(value)


def trials_table(sweep: Json) -> Table:
    names = list(sweep.get("parameters") or {})
    metric = (sweep.get("objective") or {}).get("metric", "objective")
    table = Table("#", "job", "status", *names, f"best {metric}", "epochs", title=_title(sweep))
    best_job = (sweep.get("best") or {}).get("job_id")
    for trial in sweep.get("trials", []):
        status = render.status_text(trial.get("status"))
        if trial.get("stopped_early"):
            status = Text.assemble(status, (" (stopped early)", "dim"))
        table.add_row(
            f"{trial['number']}{' *' if trial['job_id'] == best_job else ''}",
            trial["job_id"],
            status,
            *(_value(trial["params"].get(name)) for name in names),
            _value(trial.get("best_value")),
            str(trial.get("epochs_run", 0)),
        )
    return table


def _title(sweep: Json) -> str:
    done = sum(1 for t in sweep.get("trials", []) if t["status"] in FINAL_STATUSES)
    return (
        f"sweep {sweep['id']} {sweep.get('name') or ''} [{sweep['status']}] "
        f"{sweep.get('method')}: {done}/{sweep.get('max_trials')} trials done"
    )


def best_text(sweep: Json) -> str:
    best = sweep.get("best")
    if not best:
        return f"sweep {sweep['id']} has no best trial yet ({sweep['status']})"
    metric = sweep["objective"]["metric"]
    params = " ".join(f"{k}={_value(v)}" for k, v in best["params"].items())
    return (
        f"best: trial {best.get('number')} job {best['job_id']} model {best['model_id']} "
        f"{metric}={_value(best['value'])} {params}"
    )


@sweep_app.command("create")
def create(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Option("--spec", help="The sweep as YAML or JSON.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Start a sweep; prints its id."""
    body = read_sweep_file(spec)
    with make_client(ctx, url) as client:
        sweep = client.create_sweep(body)
    if as_json:
        print_json(sweep)
        return
    typer.echo(sweep["id"])


def _poll(client: TassClient, sweep_id: str) -> Json | None:
    try:
        return client.get_sweep(sweep_id)
    except ServerUnreachable:
        return None  # an API restart: keep watching


# Piped or logged (`--watch` off a terminal): a plain line per change, and this often a line
# saying it is still going when nothing changed.
QUIET_LINE_SECONDS = 60.0


def _trial_line(sweep: Json, trial: Json) -> str:
    metric = (sweep.get("objective") or {}).get("metric", "objective")
    early = " (stopped early)" if trial.get("stopped_early") else ""
    best = _value(trial.get("best_value")) or "-"
    return (
        f"trial {trial['number']} job {trial['job_id']} {trial.get('status')}{early}: "
        f"{trial.get('epochs_run', 0)} epochs, best {metric} {best}"
    )


def change_lines(before: Json | None, after: Json) -> list[str]:
    """What changed between two polls of a sweep, as plain lines (everything when `before` is
    None): the sweep's own status and trial count, then each new or changed trial."""
    lines = []
    if before is None or _title(before) != _title(after):
        lines.append(_title(after))
    seen = {t["job_id"]: t for t in (before or {}).get("trials", [])}
    keys = ("status", "epochs_run", "best_value", "stopped_early")
    for trial in after.get("trials", []):
        old = seen.get(trial["job_id"])
        if old is None or any(old.get(k) != trial.get(k) for k in keys):
            lines.append(_trial_line(after, trial))
    return lines


def _watch_lines(client: TassClient, sweep: Json, interval: float, console: Console) -> Json:
    """Poll until the sweep ends, printing (and flushing) a line per change."""

    def say(lines: list[str]) -> None:
        stamp = time.strftime("%H:%M:%S")
        for line in lines:
            console.print(f"{stamp} {line}", markup=False, highlight=False, soft_wrap=True)
        console.file.flush()

    say(change_lines(None, sweep))
    last_line = time.monotonic()
    while sweep["status"] not in SWEEP_FINAL_STATUSES:
        time.sleep(interval)
        polled = _poll(client, sweep["id"]) or sweep
        lines = change_lines(sweep, polled)
        sweep = polled
        if not lines and time.monotonic() - last_line >= QUIET_LINE_SECONDS:
            lines = [f"{_title(sweep)} (no change)"]
        if lines:
            say(lines)
            last_line = time.monotonic()
    return sweep


def _watch(client: TassClient, sweep: Json, interval: float, console: Console | None) -> Json:
    """Poll until the sweep ends, redrawing the trials table on `console` when it is a
    terminal, printing a plain line per change when it is not (a pipe or a log file)."""
    if console is not None and not console.is_terminal:
        return _watch_lines(client, sweep, interval, console)
    live = Live(trials_table(sweep), console=console, auto_refresh=False) if console else None
    if live is not None:
        live.start()
    try:
        while sweep["status"] not in SWEEP_FINAL_STATUSES:
            time.sleep(interval)
            sweep = _poll(client, sweep["id"]) or sweep
            if live is not None:
                live.update(trials_table(sweep), refresh=True)
    finally:
        if live is not None:
            live.stop()
    return sweep


@sweep_app.command("status")
def status(
    ctx: typer.Context,
    sweep_id: SweepIdArgument,
    watch: Annotated[bool, typer.Option("--watch", help="A live table until it ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.0)] = 2.0,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The sweep's trials as a table (exit 0 when a watched sweep succeeds, else 1)."""
    console = stdout_console()
    with make_client(ctx, url) as client:
        sweep = client.get_sweep(sweep_id)
        if watch:
            sweep = _watch(client, sweep, interval, None if as_json else console)
    if as_json:
        print_json(sweep)
    else:
        console.print(Group(trials_table(sweep), Text(best_text(sweep))))
    if watch:
        raise typer.Exit(0 if sweep["status"] == SweepStatus.SUCCEEDED else 1)


@sweep_app.command("list")
def list_sweeps(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Sweeps, newest first: status, trials done, best value."""
    with make_client(ctx, url) as client:
        page = client.list_sweeps(limit=limit)
    if as_json:
        print_json(page)
        return
    table = Table("sweep", "name", "status", "method", "trials", "objective", "best")
    for sweep in page["items"]:
        done = sum(1 for t in sweep["trials"] if t["status"] in FINAL_STATUSES)
        objective = sweep["objective"]
        table.add_row(
            sweep["id"],
            sweep.get("name") or "",
            render.status_text(sweep["status"]),
            sweep["method"],
            f"{done}/{sweep['max_trials']}",
            f"{objective['goal']} {objective['metric']}",
            _value((sweep.get("best") or {}).get("value")),
        )
    stdout_console().print(table)


@sweep_app.command("best")
def best(
    ctx: typer.Context,
    sweep_id: SweepIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """The best finished trial: its job, model, parameters and objective value."""
    with make_client(ctx, url) as client:
        sweep = client.get_sweep(sweep_id)
    if as_json:
        print_json(sweep.get("best"))
    else:
        typer.echo(best_text(sweep))
    if not sweep.get("best"):
        raise typer.Exit(1)


@sweep_app.command("cancel")
def cancel(
    ctx: typer.Context,
    sweep_id: SweepIdArgument,
    url: UrlOption = None,
) -> None:
    """Cancel the sweep and its queued and running trials."""
    with make_client(ctx, url) as client:
        sweep = client.cancel_sweep(sweep_id)
    typer.echo(f"sweep {sweep_id}: {sweep['status']}")
