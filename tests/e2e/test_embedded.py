"""The embedded default end to end: `tass up` with no server at all (SQLite, local artifact
folder, SQLite-backed queue), driven only through the `tass` CLI as a user would."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.embedded import Embedded, running_embedded

pytestmark = pytest.mark.integration

# without XLA: it compiles ~8 s per job on 2 cores, and these tests are about the service
TRAIN = ["--model", "alexnet-cifar", "--width", "0.25", "--batch-size", "64", "--lr", "0.003"]
TRAIN += ["--jit-compile", "off"]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Iterator[Embedded]:
    root = tmp_path_factory.mktemp("embedded")
    with running_embedded(root, TASS_SSE_POLL_SECONDS="0.2") as service:
        yield service


def train_and_wait(embedded: Embedded, *flags: str) -> str:
    """`tass submit train ... --wait` with the small model; the id of the job, which succeeded."""
    submitted = embedded.tass("submit", "train", *TRAIN, *flags, "--wait")
    assert submitted.returncode == 0, submitted.stderr + embedded.service.log_tail()
    return submitted.stdout.strip().splitlines()[0]


def check_the_downloaded_contract(path: Path, service_result: dict) -> None:
    """The README's five lines: plain Keras loads the file and evaluates uint8 images 0-255
    without compiling anything, scoring what the service's evaluation of the same images
    scored; the class names are in the file's metadata.json."""
    import zipfile

    import keras

    from tass.trainer.data.synthetic import synthetic_dataset

    data = synthetic_dataset(200, 10, "train", seed=0)  # what `--data synthetic:200` reads
    model = keras.models.load_model(path)
    metrics = model.evaluate(data.x, data.y, verbose=0, return_dict=True)
    class_names = json.loads(zipfile.ZipFile(path).read("metadata.json"))["class_names"]
    assert data.x.dtype == np.uint8 and class_names == data.class_names
    # (a near-tie may round differently in another batch size; the loss shows any misread input)
    assert metrics["accuracy"] == pytest.approx(service_result["accuracy"], abs=0.011)
    assert metrics["loss"] == pytest.approx(service_result["loss"], rel=1e-3)


def test_first_start_prints_an_admin_key_and_stores_it_privately(embedded):
    deadline = time.monotonic() + 30
    while "press Ctrl-C to stop" not in (log := embedded.service.log_tail(50000)):
        assert time.monotonic() < deadline, log
        time.sleep(0.2)
    key = embedded.key()
    assert key.startswith("tass_") and key in log
    assert (embedded.root / "credentials.json").stat().st_mode & 0o077 == 0
    assert (embedded.root / "d" / "tass.db").exists(), "SQLite lives in the data dir"


def test_the_data_dir_and_everything_in_it_are_private_to_the_user(embedded):
    """The database (webhook secrets, key hashes, every tenant's rows) and the artifacts are
    this user's alone: the dir 0700, what the service writes there 0600."""
    from tests.support.archives import class_files, tar_gz

    with embedded.api() as api:
        uploaded = api.post(
            "/v1/datasets?name=private",
            content=tar_gz(class_files(2)),
            headers={"Content-Type": "application/gzip"},
        )
    assert uploaded.status_code == 202, uploaded.text
    data = embedded.root / "d"
    entries = [data, *data.rglob("*")]
    assert any(path.name == "archive.tar.gz" for path in entries), "the upload is in the data dir"
    open_to_others = {
        str(path.relative_to(embedded.root)): oct(path.lstat().st_mode & 0o777)
        for path in entries
        if not path.is_symlink() and path.lstat().st_mode & 0o077
    }
    assert open_to_others == {}


def test_requests_without_the_key_are_refused(embedded):
    import httpx

    assert httpx.get(f"{embedded.url}/v1/jobs").status_code == 401


def test_train_download_and_evaluate_through_the_cli(embedded, tmp_path):
    job_id = train_and_wait(embedded, "--data", "synthetic:600", "--epochs", "2", "--name", "e2e")

    job = json.loads(embedded.tass("status", job_id, "--json").stdout)
    assert job["status"] == "succeeded"
    # what the worker's process printed for the job (Python logging, TensorFlow) is its log
    printed = embedded.tass("logs", job_id)
    assert printed.returncode == 0, printed.stderr
    assert "training alexnet-cifar on 540 images" in printed.stdout, printed.stdout
    assert "epoch 2/2  loss" in printed.stdout, printed.stdout
    # TensorFlow's own logging of the SavedModel export (its C++ start-up lines come earlier,
    # in the pre-warmed process before the job: tests/unit/worker/test_job_logs.py has fd-level
    # capture of C++ output)
    assert "Assets written to" in printed.stdout, printed.stdout
    # its TensorBoard event files, as `tass tensorboard` lays them out
    logdir = tmp_path / "tb"
    board = embedded.tass("tensorboard", job_id, "--logdir", str(logdir), "--download-only")
    assert board.returncode == 0, board.stderr
    assert list(logdir.glob("e2e-*/train/events.out.tfevents.*")), sorted(logdir.rglob("*"))
    assert [row for row in job["transitions"] if row["status"] == "running"]
    model_id = job["model_id"]
    # Write-once storage: the model lies under the attempt that published it.
    published = embedded.root / "d" / "artifacts" / "models" / job_id
    assert list(published.glob("attempt-*/model.keras")), sorted(published.rglob("*"))

    downloaded = embedded.tass("download", model_id, "-o", str(tmp_path))
    assert downloaded.returncode == 0, downloaded.stderr
    assert Path(downloaded.stdout.strip()).name == f"{model_id}.keras"

    evaluated = embedded.tass("submit", "evaluate", model_id, "--data", "synthetic:200", "--wait")
    assert evaluated.returncode == 0, evaluated.stderr + embedded.service.log_tail()
    eval_id = evaluated.stdout.strip().splitlines()[0]
    result = json.loads(embedded.tass("status", eval_id, "--json").stdout)["result"]
    assert sum(map(sum, result["confusion_matrix"])) == 200
    check_the_downloaded_contract(Path(downloaded.stdout.strip()), result)


def test_cancel_a_queued_job_through_the_cli(embedded):
    first = embedded.tass("submit", "train", "--data", "synthetic:600", "--epochs", "30", *TRAIN)
    second = embedded.tass("submit", "train", "--data", "synthetic:600", "--epochs", "1", *TRAIN)
    first_id, second_id = first.stdout.strip(), second.stdout.strip()

    assert embedded.tass("cancel", second_id).returncode == 0
    assert embedded.tass("cancel", first_id).returncode == 0
    for job_id in (first_id, second_id):
        watched = embedded.tass("status", job_id, "--watch", timeout=180)
        assert watched.returncode == 1, "a cancelled job exits 1"
        assert json.loads(embedded.tass("status", job_id, "--json").stdout)["status"] == "cancelled"
    never = json.loads(embedded.tass("status", second_id, "--json").stdout)
    assert [t["status"] for t in never["transitions"]] == ["queued", "cancelled"]


def test_register_as_alias_and_predict_through_the_cli(embedded, tmp_path):
    from tests.support.models import png, random_pixels

    job_id = train_and_wait(
        embedded, "--data", "synthetic:300", "--epochs", "1", "--register-as", "e2e-cats"
    )
    model_id = json.loads(embedded.tass("status", job_id, "--json").stdout)["model_id"]
    aliased = embedded.tass("registry", "alias", "e2e-cats", "production", "1")
    assert aliased.returncode == 0 and model_id in aliased.stdout, aliased.stderr

    image = tmp_path / "photo.png"
    image.write_bytes(png(random_pixels(1)[0]))
    predicted = embedded.tass("predict", "e2e-cats@production", str(image), "--json")
    assert predicted.returncode == 0, predicted.stderr + embedded.service.log_tail()
    answer = json.loads(predicted.stdout)
    assert answer["model_id"] == model_id and len(answer["predictions"]) == 1
    assert len(answer["predictions"][0]["probabilities"]) == 3  # --top-k 3 of synthetic's 10


def test_a_worker_sent_sigterm_hands_its_job_back_and_tass_up_starts_it_again(embedded):
    """SIGTERM to `tass up`'s worker mid-epoch (a preemption drill): the job checkpoints and
    goes back to the queue as `preempted`; `tass up` starts the worker again, and the job
    resumes on it from that step, on the same attempt."""
    submitted = embedded.tass(
        "submit", "train", *TRAIN, "--data", "synthetic:6000", "--epochs", "2"
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().splitlines()[0]
    with embedded.api() as http:
        deadline = time.monotonic() + 180
        while True:
            job = http.get(f"/v1/jobs/{job_id}").json()
            step = (job["progress"] or {}).get("global_step") or 0  # None while loading
            if job["status"] == "running" and 2 <= step < 40:
                break
            assert job["status"] in {"queued", "running"} and step < 40, job
            assert time.monotonic() < deadline, embedded.service.log_tail()
            time.sleep(0.1)
        child = job["worker"].rsplit("/", 1)[1]  # the job's process; its parent is the worker
        worker = int(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(worker, signal.SIGTERM)
        while job["status"] not in {"succeeded", "failed", "cancelled"}:
            assert time.monotonic() < deadline + 120, embedded.service.log_tail()
            time.sleep(0.5)
            job = http.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 1
    statuses = [t["status"] for t in job["transitions"]]
    assert statuses == ["queued", "running", "preempted", "queued", "running", "succeeded"]
    stopped_at = job["transitions"][2]["details"]["step"]
    assert job["transitions"][4]["resumed_from_step"] == stopped_at >= step
    assert "starting it again" in embedded.service.log_tail(200000)


def test_up_stops_cleanly_on_sigterm(embedded):
    up = embedded.service
    os.kill(up.proc.pid, signal.SIGTERM)
    assert up.proc.wait(60) == 0
