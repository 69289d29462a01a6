"""`tass metrics JOB`: the per-epoch history as a table (every page of it), or JSON."""

from __future__ import annotations

import json

import httpx
from client_fakes import make_job

EPOCHS = [
    {"kind": "epoch", "step": 1, "values": {"loss": 2.1, "val_accuracy": 0.31, "accuracy": 0.25}},
    {"kind": "epoch", "step": 2, "values": {"loss": 1.4, "val_accuracy": 0.52, "accuracy": 0.5}},
    {"kind": "epoch", "step": 3, "values": {"loss": 0.9, "val_accuracy": 0.61, "lr": 0.001}},
]


def route_metrics(api) -> None:
    """Two pages: epochs 1-2, then (from the cursor) epoch 3."""

    def page(request: httpx.Request) -> httpx.Response:
        assert request.url.params["kind"] == "epoch"
        if request.url.params.get("cursor") == "2":
            return httpx.Response(200, json={"items": EPOCHS[2:], "next_cursor": None})
        return httpx.Response(200, json={"items": EPOCHS[:2], "next_cursor": "2"})

    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=make_job(status="succeeded")))
    api.route("GET", "/v1/jobs/job-1/metrics", page)


def test_metrics_prints_one_row_per_epoch_with_every_metric(api, run):
    route_metrics(api)

    result = run("metrics", "job-1")

    assert result.exit_code == 0, result.output
    lines = [cells(line) for line in result.stdout.splitlines() if any(c.isalnum() for c in line)]
    header = lines[0]
    assert header[:4] == ["epoch", "loss", "accuracy", "val_accuracy"] and "lr" in header
    rows = lines[1:]
    assert [row[0] for row in rows] == ["1", "2", "3"]  # both pages, in epoch order
    assert rows[0][:4] == ["1", "2.1", "0.25", "0.31"]
    assert rows[2][:4] == ["3", "0.9", "-", "0.61"]  # no accuracy recorded at epoch 3


def cells(line: str) -> list[str]:
    """A table line's cells (rich draws its borders with box characters)."""
    return [cell for cell in line.replace("┃", " ").replace("│", " ").split() if cell]


def test_metrics_json_gives_the_rows(api, run):
    route_metrics(api)

    result = run("metrics", "job-1", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == EPOCHS


def test_metrics_of_a_job_without_epochs_says_so_and_of_a_missing_job_fails(api, run):
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=make_job()))
    api.route("GET", "/v1/jobs/job-1/metrics", httpx.Response(200, json={"items": []}))

    empty = run("metrics", "job-1")
    missing = run("metrics", "job-2")

    assert empty.exit_code == 0 and empty.stdout == ""
    assert "no epoch metrics recorded for job job-1" in empty.stderr
    assert missing.exit_code == 1 and "error" in missing.stderr
