"""The embedded default end to end: `tass up` with no server at all (SQLite, local artifact
folder, SQLite-backed queue), driven only through the `tass` CLI as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import REPO, Service, free_port, service_env, wait_http

pytestmark = pytest.mark.integration

TRAIN = ["--model", "alexnet-cifar", "--width", "0.25", "--batch-size", "64", "--lr", "0.003"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = {
        "TASS_CREDENTIALS_FILE": str(root / "credentials.json"),
        "TASS_HEARTBEAT_SECONDS": "1",
        "TASS_SSE_POLL_SECONDS": "0.2",
        "HOME": str(root),
    }
    up = Service(
        "tass-up",
        [
            sys.executable,
            "-m",
            "tass.client",
            "up",
            "--port",
            str(port),
            "--data-dir",
            str(root / "d"),
        ],
        {k: v for k, v in env.items() if v},
        root,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", up, timeout=120)
    yield {"url": url, "env": env, "root": root, "service": up}
    up.stop()


def tass(embedded: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = service_env({**embedded["env"], "TASS_URL": embedded["url"]})
    return subprocess.run(
        [sys.executable, "-m", "tass.client", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_first_start_prints_an_admin_key_and_stores_it_privately(embedded):
    deadline = time.monotonic() + 30
    while "press Ctrl-C to stop" not in (log := embedded["service"].log_tail(50000)):
        assert time.monotonic() < deadline, log
        time.sleep(0.2)
    stored = json.loads((embedded["root"] / "credentials.json").read_text())["keys"]
    key = stored[embedded["url"]]
    assert key.startswith("tass_") and key in log
    assert (embedded["root"] / "credentials.json").stat().st_mode & 0o077 == 0
    assert (embedded["root"] / "d" / "tass.db").exists(), "SQLite lives in the data dir"


def test_requests_without_the_key_are_refused(embedded):
    import httpx

    assert httpx.get(f"{embedded['url']}/v1/jobs").status_code == 401


def test_train_download_and_evaluate_through_the_cli(embedded, tmp_path):
    submitted = tass(
        embedded,
        "submit",
        "train",
        "--data",
        "synthetic:600",
        "--epochs",
        "2",
        *TRAIN,
        "--name",
        "e2e",
        "--wait",
    )
    assert submitted.returncode == 0, submitted.stderr + embedded["service"].log_tail()
    job_id = submitted.stdout.strip().splitlines()[0]

    job = json.loads(tass(embedded, "status", job_id, "--json").stdout)
    assert job["status"] == "succeeded"
    assert [row for row in job["transitions"] if row["status"] == "running"]
    model_id = job["model_id"]
    # Write-once storage: the model lies under the attempt that published it.
    published = embedded["root"] / "d" / "artifacts" / "models" / job_id
    assert list(published.glob("attempt-*/model.keras")), sorted(published.rglob("*"))

    downloaded = tass(embedded, "download", model_id, "-o", str(tmp_path))
    assert downloaded.returncode == 0, downloaded.stderr
    assert Path(downloaded.stdout.strip()).name == f"{model_id}.keras"

    evaluated = tass(embedded, "submit", "evaluate", model_id, "--data", "synthetic:200", "--wait")
    assert evaluated.returncode == 0, evaluated.stderr + embedded["service"].log_tail()
    eval_id = evaluated.stdout.strip().splitlines()[0]
    result = json.loads(tass(embedded, "status", eval_id, "--json").stdout)["result"]
    assert sum(map(sum, result["confusion_matrix"])) == 200


def test_cancel_a_queued_job_through_the_cli(embedded):
    first = tass(embedded, "submit", "train", "--data", "synthetic:600", "--epochs", "30", *TRAIN)
    second = tass(embedded, "submit", "train", "--data", "synthetic:600", "--epochs", "1", *TRAIN)
    first_id, second_id = first.stdout.strip(), second.stdout.strip()

    assert tass(embedded, "cancel", second_id).returncode == 0
    assert tass(embedded, "cancel", first_id).returncode == 0
    for job_id in (first_id, second_id):
        watched = tass(embedded, "status", job_id, "--watch", timeout=180)
        assert watched.returncode == 1, "a cancelled job exits 1"
        assert (
            json.loads(tass(embedded, "status", job_id, "--json").stdout)["status"] == "cancelled"
        )
    never = json.loads(tass(embedded, "status", second_id, "--json").stdout)
    assert [t["status"] for t in never["transitions"]] == ["queued", "cancelled"]


def test_register_as_alias_and_predict_through_the_cli(embedded, tmp_path):
    from tests.support.models import png, random_pixels

    submitted = tass(
        embedded,
        "submit",
        "train",
        "--data",
        "synthetic:300",
        "--epochs",
        "1",
        *TRAIN,
        "--register-as",
        "e2e-cats",
        "--wait",
    )
    assert submitted.returncode == 0, submitted.stderr + embedded["service"].log_tail()
    job_id = submitted.stdout.strip().splitlines()[0]
    model_id = json.loads(tass(embedded, "status", job_id, "--json").stdout)["model_id"]
    aliased = tass(embedded, "registry", "alias", "e2e-cats", "production", "1")
    assert aliased.returncode == 0 and model_id in aliased.stdout, aliased.stderr

    image = tmp_path / "photo.png"
    image.write_bytes(png(random_pixels(1)[0]))
    predicted = tass(embedded, "predict", "e2e-cats@production", str(image), "--json")
    assert predicted.returncode == 0, predicted.stderr + embedded["service"].log_tail()
    answer = json.loads(predicted.stdout)
    assert answer["model_id"] == model_id and len(answer["predictions"]) == 1
    assert len(answer["predictions"][0]["probabilities"]) == 3  # --top-k 3 of synthetic's 10


def test_up_stops_cleanly_on_sigterm(embedded):
    up = embedded["service"]
    os.kill(up.proc.pid, signal.SIGTERM)
    assert up.proc.wait(60) == 0
