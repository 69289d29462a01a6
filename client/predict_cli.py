"""`tass predict REF IMAGE...`: the model's top classes for each image, as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tass.client.api_client import Json
from tass.client.cli_common import (
    JsonOption,
    UrlOption,
    make_client,
    print_json,
    stdout_console,
)
from tass.client.errors import TassError


def predictions_table(paths: list[Path], answer: Json) -> Table:
    table = Table(
        "image", "label", "probability", "top classes", title=f"model {answer['model_id']}"
    )
    for path, row in zip(paths, answer["predictions"], strict=True):
        probabilities = row["probabilities"]
        top = ", ".join(f"{label} {p:.3f}" for label, p in probabilities.items())
        table.add_row(str(path), row["label"], f"{probabilities[row['label']]:.3f}", top)
    return table


def predict(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A model id, NAME@ALIAS or NAME:VERSION.")],
    images: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, help="PNG or JPEG files (any size)."),
    ],
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, help="Classes shown per image.")
    ] = 3,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Predict the classes of images with a trained model; prints a table."""
    try:
        files = [
            ("files", (path.name, path.read_bytes(), "application/octet-stream")) for path in images
        ]
    except OSError as exc:
        raise TassError(str(exc)) from exc
    with make_client(ctx, url) as client:
        answer = client.predict(model, files, top_k=top_k)
    if as_json:
        print_json(answer)
        return
    stdout_console().print(predictions_table(images, answer))
