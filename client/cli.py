"""The `tass` command line: submit and follow jobs over HTTP, download models, run the service.

Exit codes: 0 success (a watched job succeeded), 1 an error or a job that failed or was
cancelled, 2 a usage error. Errors are printed as one message on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.text import Text

from tass.client import render, service, specs, watch
from tass.client.api_client import DEFAULT_URL, URL_ENV, Json, TassClient
from tass.client.credentials import credentials_path
from tass.client.download import download_model
from tass.client.errors import TassError
from tass.client.gc_cli import gc
from tass.client.keys_cli import ensure_admin_key, keys_app
from tass.client.predict_cli import predict
from tass.client.registry_cli import registry_app
from tass.client.supervisor import Child, run_child
from tass.client.sweep_cli import sweep_app
from tass.client.webhooks_cli import webhooks_app

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="tass",
    help="Training as a service: submit Keras training and evaluation jobs, follow them, "
    "download the models, and run the service itself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
submit_app = typer.Typer(help="Submit a training or evaluation job.", no_args_is_help=True)
app.add_typer(submit_app, name="submit")
app.add_typer(sweep_app, name="sweep")
app.add_typer(registry_app, name="registry")
app.command("predict")(predict)
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(keys_app, name="keys", rich_help_panel="Service (run the server side)")

SERVICE = "Service (run the server side)"
app.command("gc", rich_help_panel=SERVICE)(gc)


@dataclass
class CliState:
    """Per-invocation settings (tests pass one as `obj` to plug in an httpx transport)."""

    url: str | None = None
    transport: httpx.BaseTransport | None = None


class ArtifactFormat(str, Enum):
    keras = "keras"
    savedmodel = "savedmodel"


# -- shared plumbing ----------------------------------------------------------------------------

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


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200  # piped output: don't fold tables at 80 columns
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def handle_errors(func: F) -> F:
    """Print a `TassError` as `error: ...` on stderr and exit with its code; Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TassError as exc:
            _stderr().print(Text.assemble(("error: ", "bold red"), str(exc)))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _stderr().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _client(ctx: typer.Context, url: str | None) -> TassClient:
    state = ctx.ensure_object(CliState)
    return TassClient(url or state.url, transport=state.transport)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


def _more(next_cursor: str | None) -> None:
    if next_cursor:
        _stderr().print(f"more: --cursor {next_cursor}", style="dim")


def _watch(client: TassClient, job_id: str, interval: float, console: Console) -> Json:
    """Follow a job to its end with a progress bar (a line per change when not a terminal)."""
    view = render.JobProgressView(console) if console.is_terminal else render.JobLogView(console)
    with view:
        try:
            job = watch.watch_job(client, job_id, view, interval=interval)
        except KeyboardInterrupt:
            raise TassError(
                f"stopped watching; job {job_id} goes on (tass status {job_id} --watch)"
            ) from None
    return job


def _finish(job: Json, console: Console, as_json: bool) -> None:
    """Report a finished job and exit 0 if it succeeded, 1 if it failed or was cancelled."""
    if as_json:
        _print_json(job)
    else:
        console.print(render.job_details(job))
    raise typer.Exit(watch.exit_code_for(job.get("status")))


def _submitted(
    client: TassClient, job: Json, *, as_json: bool, wait: bool, interval: float
) -> None:
    job_id = str(job.get("id"))
    if as_json and not wait:
        _print_json(job)
        return
    err = _stderr()
    if not as_json:
        typer.echo(job_id)
        err.print(f"submitted {job.get('type')} job {job_id} ({job.get('status')})")
    if not wait:
        err.print(f"follow it with: tass status {job_id} --watch", style="dim")
        return
    console = err if as_json else _stdout()
    _finish(_watch(client, job_id, interval, console), console, as_json)


# -- root ---------------------------------------------------------------------------------------


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


# -- submit -------------------------------------------------------------------------------------

MODEL = "Model"
OPTIM = "Optimisation"
REG = "Regularisation and augmentation"
DATA = "Data"
JOB = "Job"


@submit_app.command("train")
@handle_errors
def submit_train(
    ctx: typer.Context,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            help="SOURCE[:PATH]: synthetic[:N], cifar10, cifar10-python:PATH, image-folder:PATH "
            "(server-side paths). Required unless the spec file has a dataset.",
            rich_help_panel=DATA,
        ),
    ] = None,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            exists=True,
            dir_okay=False,
            help="JSON or YAML file: TrainSpec fields, or a whole job body (spec, dataset, "
            "name, tags). Flags override it.",
        ),
    ] = None,
    split: Annotated[str | None, typer.Option(help="train or test.", rich_help_panel=DATA)] = None,
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N examples.", rich_help_panel=DATA)
    ] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes of the synthetic source.", rich_help_panel=DATA)
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="alexnet-cifar or alexnet-seed.", rich_help_panel=MODEL)
    ] = None,
    width: Annotated[
        float | None, typer.Option(help="Channel width multiplier.", rich_help_panel=MODEL)
    ] = None,
    batch_norm: Annotated[
        bool | None,
        typer.Option("--batch-norm/--no-batch-norm", show_default=False, rich_help_panel=MODEL),
    ] = None,
    epochs: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    batch_size: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam, adamw or sgd.", rich_help_panel=OPTIM)
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--learning-rate", "--lr", rich_help_panel=OPTIM)
    ] = None,
    momentum: Annotated[
        float | None, typer.Option(help="SGD momentum.", rich_help_panel=OPTIM)
    ] = None,
    nesterov: Annotated[
        bool | None,
        typer.Option("--nesterov/--no-nesterov", show_default=False, rich_help_panel=OPTIM),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="constant, cosine or one-cycle.", rich_help_panel=OPTIM),
    ] = None,
    warmup_epochs: Annotated[float | None, typer.Option(rich_help_panel=OPTIM)] = None,
    seed: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    validation_split: Annotated[float | None, typer.Option(rich_help_panel=OPTIM)] = None,
    early_stopping_patience: Annotated[int | None, typer.Option(rich_help_panel=OPTIM)] = None,
    mixed_precision: Annotated[
        str | None, typer.Option(help="auto, on or off.", rich_help_panel=OPTIM)
    ] = None,
    jit_compile: Annotated[
        str | None, typer.Option(help="auto, on or off.", rich_help_panel=OPTIM)
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    l1: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    l2: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    dropout: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    label_smoothing: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    horizontal_flip: Annotated[
        bool | None,
        typer.Option(
            "--horizontal-flip/--no-horizontal-flip", show_default=False, rich_help_panel=REG
        ),
    ] = None,
    crop_padding: Annotated[int | None, typer.Option(rich_help_panel=REG)] = None,
    translate: Annotated[float | None, typer.Option(rich_help_panel=REG)] = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Any TrainSpec field, dotted for nested ones (augmentation.translate=0.1); "
            "VALUE is JSON or a plain string. Applied last.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="A name for the job.", rich_help_panel=JOB)
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option(metavar="KEY=VALUE", help="A tag (repeatable).", rich_help_panel=JOB),
    ] = None,
    register_as: Annotated[
        str | None,
        typer.Option(
            help="Register the trained model as the next version of this registry name.",
            rich_help_panel=JOB,
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Watch the job to its end.", rich_help_panel=JOB)
    ] = False,
    as_json: JsonOption = False,
    interval: IntervalOption = 1.0,
    url: UrlOption = None,
) -> None:
    """Submit a training job; prints its id (or its JSON with --json)."""
    augmentation = specs.drop_none(
        {"horizontal_flip": horizontal_flip, "crop_padding": crop_padding, "translate": translate}
    )
    spec = specs.drop_none(
        {
            "model": model,
            "width": width,
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "learning_rate": learning_rate,
            "momentum": momentum,
            "nesterov": nesterov,
            "schedule": schedule,
            "warmup_epochs": warmup_epochs,
            "weight_decay": weight_decay,
            "l1": l1,
            "l2": l2,
            "dropout": dropout,
            "batch_norm": batch_norm,
            "augmentation": augmentation or None,
            "label_smoothing": label_smoothing,
            "validation_split": validation_split,
            "seed": seed,
            "early_stopping_patience": early_stopping_patience,
            "mixed_precision": mixed_precision,
            "jit_compile": jit_compile,
        }
    )
    body = specs.build_train_body(
        spec_file=spec_file,
        spec=spec,
        assignments=assignments or [],
        data=data,
        dataset=specs.drop_none({"split": split, "limit": limit, "num_classes": num_classes}),
        name=name,
        tags=specs.parse_tags(tag or []),
    )
    if register_as is not None:
        body["register_as"] = register_as
    with _client(ctx, url) as client:
        job = client.submit_job(body)
        _submitted(client, job, as_json=as_json, wait=wait, interval=interval)


@submit_app.command("evaluate")
@handle_errors
def submit_evaluate(
    ctx: typer.Context,
    model_id: Annotated[
        str, typer.Argument(help="The model to evaluate: an id, NAME@ALIAS or NAME:VERSION.")
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "-d",
            help="SOURCE[:PATH]: synthetic[:N], cifar10, cifar10-python:PATH, image-folder:PATH.",
        ),
    ],
    split: Annotated[str | None, typer.Option(help="train or test.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N examples.")] = None,
    num_classes: Annotated[
        int | None, typer.Option(help="Classes of the synthetic source.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the job.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="A tag (repeatable).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Watch the job to its end.")] = False,
    as_json: JsonOption = False,
    interval: IntervalOption = 1.0,
    url: UrlOption = None,
) -> None:
    """Submit a job evaluating MODEL_ID on a dataset; prints its id (or its JSON with --json)."""
    body = specs.build_evaluate_body(
        model_id,
        data=data,
        dataset=specs.drop_none({"split": split, "limit": limit, "num_classes": num_classes}),
        name=name,
        tags=specs.parse_tags(tag or []),
    )
    with _client(ctx, url) as client:
        job = client.submit_job(body)
        _submitted(client, job, as_json=as_json, wait=wait, interval=interval)


# -- jobs ---------------------------------------------------------------------------------------


def _print_page(page: Json, as_json: bool, table: Callable[[list[Json]], Any], empty: str) -> None:
    """One page of a listing: JSON as is, else a table (or `empty`) and the next-page hint."""
    if as_json:
        _print_json(page)
        return
    items = page.get("items") or []
    if items:
        _stdout().print(table(items))
    else:
        _stderr().print(empty)
    _more(page.get("next_cursor"))


@app.command("list")
@handle_errors
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="queued, running, cancelling, succeeded, failed or cancelled."),
    ] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="train or evaluate.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many jobs (newest first).")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List jobs, newest first."""
    with _client(ctx, url) as client:
        page = client.list_jobs(status=status, type=job_type, limit=limit, cursor=cursor)
    _print_page(page, as_json, render.jobs_table, "no jobs")


@app.command("status")
@handle_errors
def status(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    watch_: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Show a progress bar until the job ends; exit 0 if it succeeded, 1 if not.",
        ),
    ] = False,
    interval: IntervalOption = 1.0,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Show a job (status, progress, metrics, result)."""
    with _client(ctx, url) as client:
        if watch_:
            console = _stderr() if as_json else _stdout()
            _finish(_watch(client, job_id, interval, console), console, as_json)
        job = client.get_job(job_id)
    if as_json:
        _print_json(job)
    else:
        _stdout().print(render.job_details(job))


@app.command("events")
@handle_errors
def events(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object per event: {"event", "data"}.')
    ] = False,
    url: UrlOption = None,
) -> None:
    """Print the job's live events (status, progress, metrics) until it ends.

    Exits 0 if the job succeeded, 1 if it failed or was cancelled.
    """
    console = _stdout()

    def show(event: Any) -> None:
        if as_json:
            try:
                data = event.json()
            except ValueError:
                data = event.data
            typer.echo(json.dumps({"event": event.event, "data": data}))
        else:
            console.print(render.describe_event(event), soft_wrap=True)

    with _client(ctx, url) as client:
        final = watch.follow_events(client, job_id, show)
    raise typer.Exit(watch.exit_code_for(final))


@app.command("cancel")
@handle_errors
def cancel(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The job.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Cancel a job: a queued one at once, a running one within a batch."""
    with _client(ctx, url) as client:
        job = client.cancel_job(job_id)
    if as_json:
        _print_json(job)
        return
    _stdout().print(Text.assemble(f"job {job_id}: ", render.status_text(job.get("status"))))


# -- models -------------------------------------------------------------------------------------


@app.command("models")
@handle_errors
def models(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many models (newest first).")] = 20,
    cursor: Annotated[str | None, typer.Option(help="Continue from a previous page.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List trained models."""
    with _client(ctx, url) as client:
        page = client.list_models(limit=limit, cursor=cursor)
    _print_page(page, as_json, render.models_table, "no models")


@app.command("download")
@handle_errors
def download(
    ctx: typer.Context,
    model_id: Annotated[str, typer.Argument(help="A model id, NAME@ALIAS or NAME:VERSION.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File or folder [default: the server's file name, here]."
        ),
    ] = None,
    fmt: Annotated[
        ArtifactFormat, typer.Option("--format", "-f", help="keras or savedmodel (a zip).")
    ] = ArtifactFormat.keras,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    url: UrlOption = None,
) -> None:
    """Download a model file and verify its sha256; prints the file's path.

    A file whose sha256 does not match is deleted, and the exit status is 1.
    """
    err = _stderr()
    with _client(ctx, url) as client, render.DownloadBar(err) as bar:
        result = download_model(
            client, model_id, output, fmt=fmt.value, overwrite=force, progress=bar
        )
    typer.echo(str(result.path))
    if result.verified:
        err.print(f"{render.format_size(result.size)}, sha256 {result.sha256} verified")
    else:
        err.print("warning: the server gave no checksum; the file was not verified", style="yellow")


# -- service ------------------------------------------------------------------------------------


@app.command("migrate", rich_help_panel=SERVICE)
@handle_errors
def migrate(
    database_url: Annotated[
        str | None,
        typer.Option(help="Database URL [default: $TASS_DATABASE_URL, else the embedded one]."),
    ] = None,
) -> None:
    """Upgrade the database schema to the latest version."""
    service.migrate(database_url)
    _stderr().print("the database schema is up to date")


@app.command("api", rich_help_panel=SERVICE)
@handle_errors
def api(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes (uvicorn workers) on the port; /metrics sums them all "
            "(PROMETHEUS_MULTIPROC_DIR). About one per CPU core.",
        ),
    ] = 1,
) -> None:
    """Run the HTTP API (uvicorn) until stopped."""
    child = Child(
        "api", service.api_command(host, port, workers), service.metrics_environment(workers)
    )
    raise typer.Exit(run_child(child))


@app.command("serve", rich_help_panel=SERVICE)
@handle_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to bind (keep it private).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind (the API's TASS_SERVE_URL).")] = 8100,
) -> None:
    """Run the serving process that answers predictions for the API, until stopped."""
    raise typer.Exit(run_child(Child("serving", service.serve_command(host, port))))


@app.command("worker", rich_help_panel=SERVICE)
@handle_errors
def worker(
    queues: Annotated[
        str | None, typer.Option(help="Queues to consume, Q1,Q2 [default: the app's].")
    ] = None,
    gpus: Annotated[
        str | None,
        typer.Option(help="GPUs to use, e.g. 0,1 (sets CUDA_VISIBLE_DEVICES; none hides all)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Worker processes.")
    ] = 1,
) -> None:
    """Run a Celery worker that trains and evaluates, until stopped."""
    argv = service.worker_command(queues, concurrency)
    raise typer.Exit(run_child(Child("worker", argv, service.gpu_env(gpus))))


@app.command("up", rich_help_panel=SERVICE)
@handle_errors
def up(
    host: Annotated[str, typer.Option(help="Address for the API to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the API.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Folder for the embedded database, queue and artifacts (sets TASS_DATA_DIR).",
        ),
    ] = None,
    ready_timeout: Annotated[
        float, typer.Option(min=1.0, help="Seconds to wait for the API to answer.")
    ] = 120.0,
    stop_timeout: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait for a clean stop before killing.")
    ] = 20.0,
    serve_port: Annotated[
        int | None,
        typer.Option(help="Loopback port of the serving process [default: a free one]."),
    ] = None,
) -> None:
    """Run the whole service here: migrate, then the API, one worker and the serving process
    (predictions), until Ctrl-C.

    Needs no other server: by default the database and the queue are files in the data dir.
    """
    err = _stderr()
    if data_dir is not None:
        os.environ["TASS_DATA_DIR"] = str(data_dir.expanduser().resolve())
    service.migrate()
    base = service.connect_url(host, port)
    new_key = ensure_admin_key(base)
    # the serving process listens on a free loopback port the API is told about
    serve_port = serve_port or service.free_port()
    os.environ["TASS_SERVE_URL"] = f"http://127.0.0.1:{serve_port}"
    children = [
        Child("api", service.api_command(host, port)),
        Child("worker", service.worker_command()),
        Child("serving", service.serve_command("127.0.0.1", serve_port)),
    ]

    def ready() -> None:
        err.print(
            f"tass is up at {base}  (dashboard: {base}/dashboard; API docs, once logged in "
            f"there: {base}/docs)",
            style="bold green",
        )
        if base != DEFAULT_URL:
            err.print(f"use it with: export {URL_ENV}={base}", style="dim")
        if new_key:
            err.print(f"admin API key (shown once, saved to {credentials_path()}):")
            err.print(new_key, style="bold", soft_wrap=True)
        err.print("press Ctrl-C to stop", style="dim")

    code = service.run_services(
        children,
        f"{base}/healthz",
        on_ready=ready,
        report=lambda message: err.print(message),
        ready_timeout=ready_timeout,
        stop_timeout=stop_timeout,
    )
    raise typer.Exit(code)


def main() -> None:
    """The `tass` console script."""
    app(prog_name="tass")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
