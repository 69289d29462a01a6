"""`tass submit train|evaluate`, `tass list|status|events|cancel` and `tass models|download`:
submit jobs, follow them to their end, and fetch the models they made, all over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from tass.client import render, specs, watch
from tass.client.api_client import Json, TassClient
from tass.client.cli_common import (
    CursorOption,
    IntervalOption,
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    print_page,
    stderr_console,
    stdout_console,
)
from tass.client.download import download_model
from tass.client.errors import TassError
from tass.client.train_options import DATA_PANEL, JOB_PANEL, train_spec_options
from tass.contract.artifacts import ModelFormat

submit_app = typer.Typer(help="Submit a training or evaluation job.", no_args_is_help=True)

DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        "-d",
        help="SOURCE[:PATH]: synthetic[:N], cifar10, cifar10-python:PATH, image-folder:PATH "
        "(server-side paths), dataset:ID (uploaded: tass datasets). Required unless the spec "
        "file has a dataset.",
        rich_help_panel=DATA_PANEL,
    ),
]
SplitOption = Annotated[str | None, typer.Option(help="train or test.", rich_help_panel=DATA_PANEL)]
LimitOption = Annotated[
    int | None, typer.Option(help="Use only the first N examples.", rich_help_panel=DATA_PANEL)
]
NumClassesOption = Annotated[
    int | None, typer.Option(help="Classes of the synthetic source.", rich_help_panel=DATA_PANEL)
]
NameOption = Annotated[
    str | None, typer.Option(help="A name for the job.", rich_help_panel=JOB_PANEL)
]
TagOption = Annotated[
    list[str] | None,
    typer.Option(metavar="KEY=VALUE", help="A tag (repeatable).", rich_help_panel=JOB_PANEL),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", help="Watch the job to its end.", rich_help_panel=JOB_PANEL)
]
JobIdArgument = Annotated[str, typer.Argument(help="The job.")]
SCHEDULING_PANEL = "Scheduling"
PriorityOption = Annotated[
    str | None,
    typer.Option(
        help="low, normal (default), high or urgent; a higher class is placed first and may "
        "preempt a lower one.",
        rich_help_panel=SCHEDULING_PANEL,
    ),
]
GpusOption = Annotated[
    int | None,
    typer.Option(min=0, help="GPUs it needs (0: a CPU slot).", rich_help_panel=SCHEDULING_PANEL),
]
PoolOption = Annotated[
    str | None,
    typer.Option(
        help="Only workers of this pool (default: any).", rich_help_panel=SCHEDULING_PANEL
    ),
]


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
        print_json(job)
    else:
        console.print(render.job_details(job))
    raise typer.Exit(watch.exit_code_for(job.get("status")))


def _submit(
    ctx: typer.Context, url: str | None, body: Json, *, as_json: bool, wait: bool, interval: float
) -> None:
    """Submit the job; print its id (or JSON), then follow it to its end when asked to."""
    with make_client(ctx, url) as client:
        job = client.submit_job(body)
        job_id = str(job.get("id"))
        if as_json and not wait:
            print_json(job)
            return
        err = stderr_console()
        if not as_json:
            typer.echo(job_id)
            err.print(f"submitted {job.get('type')} job {job_id} ({job.get('status')})")
        if not wait:
            err.print(f"follow it with: tass status {job_id} --watch", style="dim")
            return
        console = err if as_json else stdout_console()
        _finish(_watch(client, job_id, interval, console), console, as_json)


@submit_app.command("train")
@train_spec_options
def submit_train(
    ctx: typer.Context,
    spec: dict[str, Any],
    data: DataOption = None,
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
    architecture: Annotated[
        Path | None,
        typer.Option(
            "--architecture",
            exists=True,
            dir_okay=False,
            help="Your own network: a JSON file written by keras.Model.to_json() (built-in "
            "layers only); sets --model keras-json.",
            rich_help_panel="Model",
        ),
    ] = None,
    freeze: Annotated[
        str | None,
        typer.Option(
            help="Fine-tuning (with --init-from): layers to keep frozen, comma-separated, or "
            "all-but-head.",
            rich_help_panel="Model",
        ),
    ] = None,
    split: SplitOption = None,
    limit: LimitOption = None,
    num_classes: NumClassesOption = None,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Any TrainSpec field, dotted for nested ones (augmentation.translate=0.1); "
            "VALUE is JSON or a plain string. Applied last.",
        ),
    ] = None,
    name: NameOption = None,
    tag: TagOption = None,
    register_as: Annotated[
        str | None,
        typer.Option(
            help="Register the trained model as the next version of this registry name.",
            rich_help_panel=JOB_PANEL,
        ),
    ] = None,
    priority: PriorityOption = None,
    gpus: GpusOption = None,
    pool: PoolOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    interval: IntervalOption = 1.0,
    url: UrlOption = None,
) -> None:
    """Submit a training job; prints its id (or its JSON with --json).

    The hyperparameter flags are TrainSpec's fields; those not given are left to the spec file,
    else to the server's defaults.
    """
    spec = {**spec, **specs.model_options(architecture, freeze)}
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
    specs.with_scheduling(body, priority=priority, gpus=gpus, pool=pool)
    _submit(ctx, url, body, as_json=as_json, wait=wait, interval=interval)


@submit_app.command("evaluate")
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
    split: SplitOption = None,
    limit: LimitOption = None,
    num_classes: NumClassesOption = None,
    name: NameOption = None,
    tag: TagOption = None,
    flip: Annotated[
        bool,
        typer.Option(
            "--flip", help="Test-time flip augmentation: average each image with its mirror."
        ),
    ] = False,
    priority: PriorityOption = None,
    gpus: GpusOption = None,
    pool: PoolOption = None,
    wait: WaitOption = False,
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
        test_time_flip=flip,
    )
    specs.with_scheduling(body, priority=priority, gpus=gpus, pool=pool)
    _submit(ctx, url, body, as_json=as_json, wait=wait, interval=interval)


def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="queued, running, cancelling, succeeded, failed or cancelled."),
    ] = None,
    job_type: Annotated[str | None, typer.Option("--type", help="train or evaluate.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many jobs (newest first).")] = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List jobs, newest first."""
    with make_client(ctx, url) as client:
        page = client.list_jobs(status=status, type=job_type, limit=limit, cursor=cursor)
    print_page(page, as_json, render.jobs_table, "no jobs")


def status(
    ctx: typer.Context,
    job_id: JobIdArgument,
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
    with make_client(ctx, url) as client:
        if watch_:
            console = stderr_console() if as_json else stdout_console()
            _finish(_watch(client, job_id, interval, console), console, as_json)
        job = client.get_job(job_id)
    if as_json:
        print_json(job)
    else:
        stdout_console().print(render.job_details(job))


def events(
    ctx: typer.Context,
    job_id: JobIdArgument,
    as_json: Annotated[
        bool, typer.Option("--json", help='One JSON object per event: {"event", "data"}.')
    ] = False,
    url: UrlOption = None,
) -> None:
    """Print the job's live events (status, progress, metrics) until it ends.

    Exits 0 if the job succeeded, 1 if it failed or was cancelled.
    """
    console = stdout_console()

    def show(event: Any) -> None:
        if as_json:
            try:
                data = event.json()
            except ValueError:
                data = event.data
            typer.echo(json.dumps({"event": event.event, "data": data}))
        else:
            console.print(render.describe_event(event), soft_wrap=True)

    with make_client(ctx, url) as client:
        final = watch.follow_events(client, job_id, show)
    raise typer.Exit(watch.exit_code_for(final))


def cancel(
    ctx: typer.Context,
    job_id: JobIdArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Cancel a job: a queued one at once, a running one within a batch."""
    with make_client(ctx, url) as client:
        job = client.cancel_job(job_id)
    if as_json:
        print_json(job)
        return
    stdout_console().print(Text.assemble(f"job {job_id}: ", render.status_text(job.get("status"))))


def models(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many models (newest first).")] = 20,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List trained models."""
    with make_client(ctx, url) as client:
        page = client.list_models(limit=limit, cursor=cursor)
    print_page(page, as_json, render.models_table, "no models")


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
        ModelFormat, typer.Option("--format", "-f", help="keras or savedmodel (a zip).")
    ] = ModelFormat.KERAS,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    url: UrlOption = None,
) -> None:
    """Download a model file and verify its sha256; prints the file's path.

    A file whose sha256 does not match is deleted, and the exit status is 1.
    """
    err = stderr_console()
    with make_client(ctx, url) as client, render.DownloadBar(err) as bar:
        result = download_model(
            client, model_id, output, fmt=fmt.value, overwrite=force, progress=bar
        )
    typer.echo(str(result.path))
    if result.verified:
        err.print(f"{render.format_size(result.size)}, sha256 {result.sha256} verified")
    else:
        err.print("warning: the server gave no checksum; the file was not verified", style="yellow")
