"""`tass sweep create/status/best/cancel` against a scripted API."""

from __future__ import annotations

import sys

import httpx


def make_sweep(status: str = "running", best: dict | None = None) -> dict:
    trials = [
        {
            "number": 0,
            "job_id": "job-a",
            "params": {"learning_rate": 0.1},
            "status": "succeeded" if status == "succeeded" else "running",
            "stopped_early": False,
            "best_value": 0.8,
            "final_value": 0.8,
            "epochs_run": 3,
            "model_id": "model-a",
        },
        {
            "number": 1,
            "job_id": "job-b",
            "params": {"learning_rate": 0.001},
            "status": "cancelled",
            "stopped_early": True,
            "best_value": 0.2,
            "final_value": 0.2,
            "epochs_run": 1,
            "model_id": None,
        },
    ]
    return {
        "id": "sweep-1",
        "name": "lr",
        "status": status,
        "method": "random",
        "parameters": {"learning_rate": {"values": [0.1, 0.001]}},
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_trials": 2,
        "max_parallel": 2,
        "trials": trials,
        "best": best,
    }


BEST = {
    "job_id": "job-a",
    "model_id": "model-a",
    "params": {"learning_rate": 0.1},
    "value": 0.8,
    "number": 0,
}


def test_create_posts_the_yaml_file_and_prints_the_id(api, run, tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        "name: lr\nmethod: random\nmax_trials: 2\n"
        "parameters:\n  learning_rate: {values: [0.1, 0.001]}\n"
        "dataset: {source: synthetic}\n"
    )
    api.route("POST", "/v1/sweeps", httpx.Response(202, json=make_sweep()))

    result = run("sweep", "create", "--spec", str(spec))

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "sweep-1"
    [body] = api.bodies("POST", "/v1/sweeps")
    assert body["parameters"] == {"learning_rate": {"values": [0.1, 0.001]}}
    assert body["max_trials"] == 2


def test_create_shows_the_servers_422(api, run, tmp_path):
    spec = tmp_path / "sweep.yaml"
    spec.write_text("parameters: {nope: {values: [1]}}\n")
    detail = [{"loc": ["body", "parameters", "nope"], "msg": "parameters.nope: not a field"}]
    api.route("POST", "/v1/sweeps", httpx.Response(422, json={"detail": detail}))

    result = run("sweep", "create", "--spec", str(spec))

    assert result.exit_code != 0
    assert "parameters.nope" in result.stderr


def test_status_watch_polls_until_the_sweep_ends_and_shows_stopped_trials(api, run):
    api.sequence(
        "GET",
        "/v1/sweeps/sweep-1",
        [
            httpx.Response(200, json=make_sweep()),
            httpx.Response(200, json=make_sweep()),
            httpx.Response(200, json=make_sweep("succeeded", BEST)),
            httpx.Response(500, json={"detail": "polled past the end"}),
        ],
    )

    result = run("sweep", "status", "sweep-1", "--watch", "--interval", "0")

    assert result.exit_code == 0, result.output
    assert len(api.requests) == 3
    assert "stopped early" in result.stdout and "succeeded" in result.stdout
    assert "best: trial 0 job job-a model model-a val_accuracy=0.8" in result.stdout


def test_best_prints_the_best_trial_and_exits_1_without_one(api, run):
    api.route("GET", "/v1/sweeps/sweep-1", httpx.Response(200, json=make_sweep("succeeded", BEST)))
    result = run("sweep", "best", "sweep-1")
    assert result.exit_code == 0 and "model model-a" in result.stdout

    api.route("GET", "/v1/sweeps/sweep-1", httpx.Response(200, json=make_sweep()))
    assert run("sweep", "best", "sweep-1").exit_code == 1


def test_cancel_posts_and_reports_the_status(api, run):
    api.route(
        "POST", "/v1/sweeps/sweep-1/cancel", httpx.Response(202, json=make_sweep("cancelled"))
    )
    result = run("sweep", "cancel", "sweep-1")
    assert result.exit_code == 0 and "cancelled" in result.stdout


def test_list_shows_each_sweep_with_its_progress_and_best(api, run):
    page = {"items": [make_sweep("succeeded", BEST)], "next_cursor": None}
    api.route("GET", "/v1/sweeps", httpx.Response(200, json=page))

    result = run("sweep", "list")

    assert result.exit_code == 0, result.output
    assert "sweep-1" in result.stdout and "succeeded" in result.stdout
    assert "2/2" in result.stdout and "0.8" in result.stdout


def test_status_watch_off_a_terminal_prints_a_line_per_change_as_it_happens(api, run, monkeypatch):
    """Piped (`| tee log`): no live table that shows only at the end, but plain lines,
    flushed when something changes, and a line now and then when nothing does."""
    monkeypatch.setattr("tass.client.sweep_cli.QUIET_LINE_SECONDS", 0.0)
    first = make_sweep()
    first["trials"][0].update(status="queued", epochs_run=0, best_value=None)
    later = make_sweep()  # trial 0 running 3 epochs in, trial 1 unchanged
    answers = iter([first, first, later, later, make_sweep("succeeded", BEST)])
    printed_by_then: list[str] = []

    def poll(request: httpx.Request) -> httpx.Response:
        sys.stdout.flush()
        printed_by_then.append(sys.stdout.buffer.getvalue().decode())  # CliRunner's capture
        return httpx.Response(200, json=next(answers))

    api.route("GET", "/v1/sweeps/sweep-1", poll)

    result = run("sweep", "status", "sweep-1", "--watch", "--interval", "0")

    assert result.exit_code == 0, result.output
    assert "trial 0 job job-a queued: 0 epochs, best val_accuracy -" in printed_by_then[1]
    assert "trial 1 job job-b cancelled (stopped early)" in printed_by_then[1]
    assert "trial 0 job job-a running: 3 epochs, best val_accuracy 0.8" in printed_by_then[3]
    assert "(no change)" in printed_by_then[4]  # the poll after an unchanged one
    lines = result.stdout.splitlines()
    assert sum("trial 1 job job-b" in line and ":" in line for line in lines) == 1  # once
    assert "[succeeded]" in result.stdout and "best: trial 0 job job-a" in result.stdout
