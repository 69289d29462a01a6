"""A training job's TensorBoard files: an artifact of kind `tensorboard`, downloadable by its
own tenant only, and `tass tensorboard` lays them out one run folder per job."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import pytest
from fastapi.testclient import TestClient

from tass.client.errors import TassError
from tass.client.tensorboard_cli import extract_zip, run_name
from tass.core.job_results import record_artifacts, stored_artifact
from tass.core.objectstore import ObjectStore
from tass.core.tensorboard_files import TENSORBOARD_KIND, tensorboard_key
from tests.api.conftest import bearer
from tests.api.test_jobs import submit

EVENTS = {
    "train/events.out.tfevents.1.host.1.v2": b"train events",
    "validation/events.out.tfevents.1.host.2.v2": b"validation events",
}


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def store_tensorboard(db, settings, job_id: str, attempt: int = 1) -> None:
    store = ObjectStore(settings.resolved_artifact_url)
    obj = store.put_bytes(tensorboard_key(job_id, attempt), zipped(EVENTS))
    with db() as session:
        record_artifacts(session, [stored_artifact(obj, job_id=job_id, kind=TENSORBOARD_KIND)])
        session.commit()


def test_the_event_files_are_an_artifact_and_download_as_a_zip(client, app, keys, db, settings):
    job_id = submit(client, name="baseline")["id"]
    assert client.get(f"/v1/jobs/{job_id}/tensorboard").status_code == 404  # none yet
    store_tensorboard(db, settings, job_id)
    kinds = [a["kind"] for a in client.get(f"/v1/jobs/{job_id}/artifacts").json()]
    assert kinds == ["tensorboard"]
    response = client.get(f"/v1/jobs/{job_id}/tensorboard")
    assert response.status_code == 200 and response.headers["X-Tass-Attempt"] == "1"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == sorted(EVENTS)
    globex = TestClient(app, headers=bearer(keys["globex"]))
    assert globex.get(f"/v1/jobs/{job_id}/tensorboard").status_code == 404


def test_tass_tensorboard_downloads_one_run_folder_per_job(
    client, db, settings, tass_cli, tmp_path
):
    first = submit(client, name="baseline")["id"]
    second = submit(client)["id"]
    bare = submit(client)["id"]
    for job_id in (first, second):
        store_tensorboard(db, settings, job_id)
    logdir = tmp_path / "tb"
    result = tass_cli(
        "tensorboard", first, second, bare, "--logdir", str(logdir), "--download-only"
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(logdir)
    assert f"job {bare}: no TensorBoard files" in result.output
    runs = sorted(p.name for p in logdir.iterdir())
    assert runs == sorted([f"baseline-{first[:8]}", f"job-{second[:8]}"])
    for run in runs:
        assert (logdir / run / "train" / "events.out.tfevents.1.host.1.v2").read_bytes() == (
            b"train events"
        )
    assert tass_cli("tensorboard", bare, "--download-only").exit_code != 0


def test_a_sweeps_trials_get_one_run_folder_each(client, db, settings, tass_cli, tmp_path):
    from tests.api.test_sweeps import sweep_body

    sweep = client.post("/v1/sweeps", json=sweep_body(max_parallel=2)).json()
    trials = sweep["trials"]
    assert len(trials) == 2
    for trial in trials:
        store_tensorboard(db, settings, trial["job_id"])
    logdir = tmp_path / "tb"
    result = tass_cli(
        "tensorboard", "--sweep", sweep["id"], "--logdir", str(logdir), "--download-only"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in logdir.iterdir()) == sorted(
        f"trial-{t['number']:03d}-{t['job_id'][:8]}" for t in trials
    )


def test_run_folder_names():
    job = {"id": "0123456789abcdef0123456789abcdef", "name": "sweep x / trial"}
    assert run_name(job, trial=7) == "trial-007-01234567"
    assert run_name(job) == "sweep-x-trial-01234567"


def test_a_zip_that_would_write_outside_the_folder_is_refused(tmp_path):
    with pytest.raises(TassError, match="unsafe path"):
        extract_zip(zipped({"../escape": b"x"}), tmp_path / "run")
    assert not (tmp_path / "escape").exists()


def test_tensorboard_can_be_started():
    smoke = subprocess.run(
        [sys.executable, "-m", "tensorboard.main", "--version_tb"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert smoke.returncode == 0, smoke.stderr
    assert smoke.stdout.strip()[0].isdigit()
