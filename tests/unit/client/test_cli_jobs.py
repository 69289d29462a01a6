"""`tass status`, `status --watch`, `events`, `list`, `cancel`, and connection errors."""

from __future__ import annotations

import io
import json
import re
import socket

import httpx
from client_fakes import make_job, running, sse
from rich.console import Console
from typer.testing import CliRunner

from tass.client.cli import CliState, app
from tass.client.render import JobProgressView


def test_watch_stops_at_the_terminal_status_and_exits_0_on_success(api, run):
    done = make_job(status="succeeded", metrics={"loss": 0.2, "val_accuracy": 0.91})
    api.sequence(
        "GET",
        "/v1/jobs/job-1",
        [
            httpx.Response(200, json=make_job()),
            httpx.Response(200, json=running(1, 4, loss=1.5)),
            httpx.Response(200, json=running(2, 8, loss=0.9, val_accuracy=0.7)),
            httpx.Response(200, json=done),
            httpx.Response(500, json={"detail": "polled past the end"}),
        ],
    )

    result = run("status", "job-1", "--watch", "--interval", "0")

    assert result.exit_code == 0, result.output
    assert len(api.requests) == 4  # stopped polling at "succeeded"
    assert "epoch 2/3 step 8/10" in result.stdout
    assert "val_accuracy=0.91" in result.stdout


def test_watch_exits_1_when_the_job_fails_or_is_cancelled(api, run):
    for final in ("failed", "cancelled"):
        api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=make_job(status=final)))

        result = run("status", "job-1", "--watch", "--interval", "0")

        assert result.exit_code == 1, final
        assert final in result.stdout


def test_status_without_watch_shows_the_job(api, run):
    job = make_job(
        type="evaluate",
        status="succeeded",
        model_id="m-1",
        result={
            "loss": 0.4,
            "accuracy": 0.875,
            "per_class_accuracy": [0.9, 0.85],
            "class_names": ["cat", "dog"],
        },
    )
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=job))

    result = run("status", "job-1")

    assert result.exit_code == 0
    for text in ("succeeded", "m-1", "accuracy=0.875", "cat", "dog", "0.85"):
        assert text in result.stdout


def test_status_says_how_many_images_an_evaluation_measured(api, run):
    result = {"loss": 0.4, "accuracy": 0.875, "num_examples": 1000, "class_names": ["a", "b"]}
    job = make_job(type="evaluate", status="succeeded", model_id="m-1", result=result)
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=job))

    shown = run("status", "job-1")

    assert shown.exit_code == 0
    assert re.search(r"^examples\s+1,000\s*$", shown.stdout, re.MULTILINE), shown.stdout


def test_status_shows_a_training_result(api, run):
    job = make_job(status="succeeded", result={"final": {"epoch": 3, "val_accuracy": 0.93}})
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=job))

    result = run("status", "job-1")

    assert "final" in result.stdout and "val_accuracy=0.93" in result.stdout


def test_status_json(api, run):
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=make_job(status="running")))

    result = run("status", "job-1", "--json")

    assert json.loads(result.stdout)["status"] == "running"


def test_unknown_job_shows_the_server_message(api, run):
    api.route("GET", "/v1/jobs/nope", httpx.Response(404, json={"detail": "no job 'nope'"}))

    result = run("status", "nope")

    assert result.exit_code == 1
    assert "no job 'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_events_prints_each_event_until_the_terminal_status(api, run):
    body = sse(
        ("status", {"status": "running", "at": "2025-01-01T10:00:00Z"}),
        ("progress", {"epoch": 1, "epochs": 2, "step": 10, "steps_per_epoch": 10}),
        ("metrics", {"kind": "epoch", "step": 1, "values": {"loss": 0.5, "accuracy": 0.8}}),
        ("status", {"status": "succeeded", "at": "2025-01-01T10:05:00Z"}),
        ("status", {"status": "after-the-end", "at": None}),
    )
    api.route(
        "GET",
        "/v1/jobs/job-1/events",
        httpx.Response(
            200, content=b": ping\r\n\r\n" + body, headers={"content-type": "text/event-stream"}
        ),
    )

    result = run("events", "job-1")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("status    running")
    assert "epoch 1/2 step 10/10" in lines[1]
    assert "epoch 1: accuracy=0.8 loss=0.5" in lines[2]
    assert lines[3].startswith("status    succeeded")


def test_events_json_and_failed_exit_code(api, run):
    body = sse(("status", {"status": "failed", "at": None}))
    api.route("GET", "/v1/jobs/job-1/events", httpx.Response(200, content=body))

    result = run("events", "job-1", "--json")

    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "event": "status",
        "data": {"status": "failed", "at": None},
    }


def test_events_reopens_a_stream_that_ends_before_the_job(api, run):
    api.sequence(
        "GET",
        "/v1/jobs/job-1/events",
        [
            httpx.Response(200, content=sse(("status", {"status": "running", "at": None}))),
            httpx.Response(200, content=sse(("status", {"status": "succeeded", "at": None}))),
        ],
    )
    api.route("GET", "/v1/jobs/job-1", httpx.Response(200, json=make_job(status="running")))

    result = run("events", "job-1")

    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout


def test_events_resumes_after_the_last_event_id_when_the_server_ends_a_stream_by_lifetime(api, run):
    first = (
        b'event: status\r\nid: -1.2.\r\ndata: {"status": "running", "at": null}\r\n\r\n'
        b"event: metrics\r\nid: 1.2.\r\n"
        b'data: {"kind": "epoch", "step": 1, "values": {"loss": 0.5}}\r\n\r\n'
        b"event: end\r\nretry: 1000\r\n"
        b'data: {"reason": "lifetime", "detail": "stream lifetime reached"}\r\n\r\n'
    )
    second = (
        b"event: metrics\r\nid: 2.2.\r\n"
        b'data: {"kind": "epoch", "step": 2, "values": {"loss": 0.25}}\r\n\r\n'
        b"event: status\r\nid: 2.3.\r\n"
        b'data: {"status": "succeeded", "at": null}\r\n\r\n'
    )
    api.sequence(
        "GET",
        "/v1/jobs/job-1/events",
        [httpx.Response(200, content=first), httpx.Response(200, content=second)],
    )

    result = run("events", "job-1", "--json")

    assert result.exit_code == 0, result.output
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [event["event"] for event in shown] == ["status", "metrics", "metrics", "status"]
    assert [event["data"].get("step") for event in shown] == [None, 1, 2, None]
    streams = [r for r in api.requests if r.url.path.endswith("/events")]
    assert "last-event-id" not in streams[0].headers
    assert streams[1].headers["last-event-id"] == "1.2."
    assert not any(r.url.path == "/v1/jobs/job-1" for r in api.requests)  # no fallback read


def test_list_shows_a_table_and_passes_filters(api, run):
    page = {
        "items": [
            make_job(id="job-2", status="running", name="second"),
            make_job(id="job-1", status="succeeded", metrics={"accuracy": 0.5}),
        ],
        "next_cursor": "c2",
    }
    api.route("GET", "/v1/jobs", httpx.Response(200, json=page))

    result = run("list", "--status", "running", "--type", "train", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "job-2" in result.stdout and "second" in result.stdout and "job-1" in result.stdout
    assert "accuracy=0.5" in result.stdout
    assert "--cursor c2" in result.stderr
    params = api.requests[0].url.params
    assert (params["status"], params["type"], params["limit"]) == ("running", "train", "2")


def test_cancel_and_cancelling_a_final_job(api, run):
    api.route(
        "POST", "/v1/jobs/job-1/cancel", httpx.Response(202, json=make_job(status="cancelling"))
    )
    result = run("cancel", "job-1")
    assert result.exit_code == 0
    assert "cancelling" in result.stdout

    conflict = httpx.Response(409, json={"detail": "job job-1 is already succeeded"})
    api.route("POST", "/v1/jobs/job-1/cancel", conflict)
    result = run("cancel", "job-1")
    assert result.exit_code == 1
    assert "already succeeded" in result.stderr


def test_connection_refused_names_the_url():
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"

    result = CliRunner().invoke(app, ["list"], obj=CliState(url=url))

    assert result.exit_code == 1
    assert f"cannot connect to the tass API at {url}" in result.stderr
    assert "Traceback" not in result.output


def test_url_option_and_environment(api, monkeypatch):
    api.route("GET", "/v1/jobs", httpx.Response(200, json={"items": [], "next_cursor": None}))
    runner = CliRunner()

    monkeypatch.setenv("TASS_URL", "http://from-env:1")
    runner.invoke(app, ["list"], obj=CliState(transport=api.transport))
    runner.invoke(app, ["--url", "http://global:2", "list"], obj=CliState(transport=api.transport))
    runner.invoke(app, ["list", "--url", "local:3"], obj=CliState(transport=api.transport))

    assert [str(r.url.copy_with(query=None)) for r in api.requests] == [
        "http://from-env:1/v1/jobs",
        "http://global:2/v1/jobs",
        "http://local:3/v1/jobs",
    ]


def test_api_key_is_sent_as_bearer_token(api, run, monkeypatch):
    api.route("GET", "/v1/models", httpx.Response(200, json={"items": [], "next_cursor": None}))
    run("models")
    monkeypatch.setenv("TASS_API_KEY", "s3cret")
    run("models")

    assert "authorization" not in api.requests[0].headers
    assert api.requests[1].headers["authorization"] == "Bearer s3cret"


def test_a_missing_key_says_how_to_send_one(api, run):
    api.route("GET", "/v1/jobs", httpx.Response(401, json={"detail": "missing API key"}))

    result = run("list")

    assert result.exit_code == 1
    assert "missing API key" in result.stderr and "TASS_API_KEY" in result.stderr


def test_progress_bar_shows_epoch_step_metrics_speed_and_eta():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)

    with JobProgressView(console) as view:
        view.update(running(2, 5, loss=0.61, accuracy=0.8, val_accuracy=0.75))

    text = out.getvalue()
    for part in ("running", "epoch 2/3", "step 5/10", "loss=0.61", "val_accuracy=0.75"):
        assert part in text
    assert "1234 img/s" in text or "1235 img/s" in text
    assert "ETA 42s" in text


def in_phase(phase: str, epoch: int | None = None, step: int | None = None) -> dict:
    """A running job in `phase` (at `epoch` and `step` of 3 x 10 once it has trained)."""
    job = running(epoch or 1, step or 0) if epoch else make_job(status="running", progress={})
    job["progress"]["phase"] = phase
    return job


def test_watch_prints_each_phase_the_job_goes_through(api, run):
    api.sequence(
        "GET",
        "/v1/jobs/job-1",
        [
            httpx.Response(200, json=make_job()),
            httpx.Response(200, json=in_phase("loading")),
            httpx.Response(200, json=in_phase("compiling")),
            httpx.Response(200, json=in_phase("training", 1, 4)),
            httpx.Response(200, json=in_phase("evaluating", 3, 10)),
            httpx.Response(200, json=in_phase("exporting", 3, 10)),
            httpx.Response(200, json=make_job(status="succeeded")),
        ],
    )

    result = run("status", "job-1", "--watch", "--interval", "0")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for expected in (
        "running  loading data",
        "running  compiling",
        "running  training epoch 1/3 step 4/10",
        "running  evaluating epoch 3/3 step 10/10",
        "running  exporting model epoch 3/3 step 10/10",
    ):
        assert expected in lines, result.stdout


def test_progress_bar_names_the_phase_and_drops_the_eta_after_training():
    def shown(job: dict) -> str:
        out = io.StringIO()
        with JobProgressView(Console(file=out, force_terminal=True, width=160)) as view:
            view.update(job)
        return out.getvalue()

    assert "compiling" in shown(in_phase("compiling"))
    training = shown(in_phase("training", 2, 5))
    assert "training" in training and "ETA 42s" in training
    exporting = shown(in_phase("exporting", 3, 10))
    assert "exporting model" in exporting and "epoch 3/3" in exporting
    assert "ETA" not in exporting  # the server's ETA counts training steps only


def test_events_name_the_phase_of_each_progress_event(api, run):
    progress = {"phase": "evaluating", "epoch": 3, "epochs": 3, "step": 10, "steps_per_epoch": 10}
    body = sse(("progress", progress), ("status", {"status": "succeeded"}))
    api.route("GET", "/v1/jobs/job-1/events", httpx.Response(200, content=body))

    result = run("events", "job-1")

    assert "progress  evaluating epoch 3/3 step 10/10" in result.stdout, result.stdout
