"""`tass datasets`: upload an image-folder archive (streamed, with a progress bar), list,
show and delete uploaded datasets; train on one with `--data dataset:ID` style job bodies
(`{"source": "dataset", "id": ID}`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TaskID
from rich.table import Table

from tass.client import render
from tass.client.api_client import Json
from tass.client.cli_common import (
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    stderr_console,
    stdout_console,
)
from tass.client.errors import UsageError
from tass.contract.statuses import DatasetStatus

CHUNK_BYTES = 256 * 1024
CONTENT_TYPES = {
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
    ".tar": "application/x-tar",
    ".zip": "application/zip",
}

datasets_app = typer.Typer(
    help="Datasets: upload image-folder archives (.tar.gz, .zip) and train on them.",
    no_args_is_help=True,
)


def content_type_for(path: Path) -> str:
    for suffix, content_type in CONTENT_TYPES.items():
        if path.name.lower().endswith(suffix):
            return content_type
    raise UsageError(f"{path}: expected a .tar.gz, .tgz, .tar or .zip archive of class folders")


def _file_chunks(path: Path, progress: Progress, task: TaskID) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            yield block
            progress.update(task, advance=len(block))


def _size(size: int) -> str:
    """`16.4 MB (16367337 bytes)`: readable, and exact for comparing with the file."""
    return f"{render.format_size(size)} ({size} bytes)"


def _describe(dataset: Json) -> str:
    head = f"dataset {dataset['id']} ({dataset['name']}): {dataset['status']}"
    if dataset["status"] == DatasetStatus.READY:
        classes = ", ".join(dataset.get("classes") or [])
        return f"{head}, {dataset['num_examples']} images, classes {classes}"
    if dataset["status"] == DatasetStatus.FAILED:
        return f"{head}: {dataset.get('error')}"
    return head


@datasets_app.command("upload")
def upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A .tar.gz, .tar or .zip of class folders.")],
    name: Annotated[
        str | None, typer.Option(help="The dataset's name (default: file name).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait until the server has validated it.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Upload an archive (streamed, with a progress bar); prints the dataset id. With --wait,
    waits until it is ready (exit 0) or failed (exit 1, with the reason)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    content_type = content_type_for(path)
    size = path.stat().st_size
    with make_client(ctx, url) as client:
        with render.transfer_progress(stderr_console()) as progress:
            task = progress.add_task(f"uploading {path.name}", total=size)
            dataset = client.upload_dataset(
                name or path.name,
                _file_chunks(path, progress, task),
                size=size,
                content_type=content_type,
            )
        while wait and dataset["status"] not in (DatasetStatus.READY, DatasetStatus.FAILED):
            time.sleep(1.0)
            dataset = client.get_dataset(dataset["id"])
    if as_json:
        print_json(dataset)
    else:
        typer.echo(_describe(dataset))
        typer.echo(f"sha256 {dataset['sha256']}, {_size(dataset['size'])}")
    if dataset["status"] == DatasetStatus.FAILED:
        raise typer.Exit(1)


@datasets_app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="validating, ready or failed.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Your datasets, newest first."""
    with make_client(ctx, url) as client:
        data = client.list_datasets(status=status)
    if as_json:
        print_json(data)
        return
    table = Table("id", "name", "status", "images", "classes", "size", "created")
    for column in table.columns[3:6]:  # images, classes, size
        column.justify = "right"
    for item in data["items"]:
        table.add_row(
            item["id"],
            item["name"],
            item["status"],
            "-" if item.get("num_examples") is None else str(item["num_examples"]),
            str(len(item.get("classes") or [])) if item.get("classes") else "-",
            render.format_size(item["size"]),
            render.format_time(item["created_at"]),
        )
    stdout_console().print(table)


@datasets_app.command("show")
def show(
    ctx: typer.Context, dataset_id: str, as_json: JsonOption = False, url: UrlOption = None
) -> None:
    """One dataset: status, digest, classes with their counts, or why it failed."""
    with make_client(ctx, url) as client:
        dataset = client.get_dataset(dataset_id)
    if as_json:
        print_json(dataset)
        return
    typer.echo(_describe(dataset))
    typer.echo(
        f"sha256 {dataset['sha256']}, {_size(dataset['size'])} ({dataset['archive_format']})"
    )
    for split, counts in (dataset.get("class_counts") or {}).items():
        typer.echo(f"{split}: " + ", ".join(f"{name} {count}" for name, count in counts.items()))


@datasets_app.command("delete")
def delete(ctx: typer.Context, dataset_id: str, url: UrlOption = None) -> None:
    """Delete a dataset and its stored archive (refused while a queued or running job uses it)."""
    with make_client(ctx, url) as client:
        client.delete_dataset(dataset_id)
    typer.echo(f"deleted dataset {dataset_id}")
