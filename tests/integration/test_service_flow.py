"""The whole service over real processes and servers: train, watch, download, evaluate, cancel."""

from __future__ import annotations

import hashlib
import json
import re
import time

import numpy as np
import pytest

from tests.support.processes import wait_for_status

pytestmark = pytest.mark.integration

FINAL = {"succeeded", "failed", "cancelled"}
TINY = {
    "model": "alexnet-cifar",
    "jit_compile": "off",  # XLA compiles ~8 s per job on 2 cores; these tests are about the service
    "width": 0.25,
    "epochs": 2,
    "batch_size": 64,
    "learning_rate": 0.003,
    "validation_split": 0.2,
}
DATA = {"source": "synthetic", "num_examples": 600}


def read_events(http, job_id: str) -> list[tuple[str, dict]]:
    events, name = [], None
    with http.stream("GET", f"/v1/jobs/{job_id}/events", timeout=120) as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


@pytest.fixture(scope="module")
def trained(http_module, api, worker) -> dict:
    response = http_module.post(
        "/v1/jobs", json={"type": "train", "spec": TINY, "dataset": DATA, "name": "tiny"}
    )
    assert response.status_code == 202, response.text
    return wait_for_status(http_module, response.json()["id"], FINAL, 300, api[0], worker)


def test_training_job_succeeds_with_metrics_per_epoch(trained, http):
    assert trained["status"] == "succeeded", trained["error"]
    assert [t["status"] for t in trained["transitions"]] == ["queued", "running", "succeeded"]
    assert trained["progress"]["epoch"] == 2 and trained["progress"]["epochs"] == 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(trained["metrics"])

    epochs = http.get(f"/v1/jobs/{trained['id']}/metrics").json()["items"]
    assert [row["step"] for row in epochs] == [1, 2]
    steps = http.get(f"/v1/jobs/{trained['id']}/metrics", params={"kind": "step"}).json()
    assert steps["items"], "per-step progress was recorded"


def test_event_stream_of_a_finished_job_ends_with_its_status(trained, http):
    events = read_events(http, trained["id"])
    assert [e for e in events if e[0] == "metrics"][-1][1]["step"] == 2
    assert events[-1] == ("status", {"status": "succeeded", "at": events[-1][1]["at"]})


def test_model_download_is_verified_and_predicts(trained, http, tmp_path):
    from tass.trainer.saving import load_model

    model_id = trained["model_id"]
    meta = http.get(f"/v1/models/{model_id}").json()
    assert {a["format"] for a in meta["artifacts"]} == {"keras", "savedmodel"}

    first = http.get(f"/v1/models/{model_id}/download", params={"format": "keras"})
    assert first.status_code == 307, "S3 downloads redirect to a presigned URL"
    expected = first.headers["x-checksum-sha256"]
    body = http.get(first.headers["location"]).content
    assert hashlib.sha256(body).hexdigest() == expected
    path = tmp_path / "model.keras"
    path.write_bytes(body)

    model = load_model(path)
    predictions = model.predict(np.zeros((3, 32, 32, 3), dtype=np.uint8), verbose=0)
    assert predictions.shape == (3, 10)
    assert model.evaluate(np.zeros((3, 32, 32, 3), np.uint8), np.arange(3), verbose=0)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-4)


def test_evaluation_job_reports_a_confusion_matrix(trained, http, api, worker):
    response = http.post(
        "/v1/jobs",
        json={
            "type": "evaluate",
            "model_id": trained["model_id"],
            "dataset": {**DATA, "num_examples": 200},
        },
    )
    assert response.status_code == 202, response.text
    job = wait_for_status(http, response.json()["id"], FINAL, 240, api[0], worker)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 200
    assert 0.0 <= result["accuracy"] <= 1.0 and len(result["per_class_accuracy"]) == 10


def test_cancelled_queued_job_never_runs_and_running_job_stops(trained, http, api, worker):
    long_spec = {**TINY, "epochs": 50}
    running = http.post("/v1/jobs", json={"type": "train", "spec": long_spec, "dataset": DATA})
    queued = http.post("/v1/jobs", json={"type": "train", "spec": TINY, "dataset": DATA})
    running_id, queued_id = running.json()["id"], queued.json()["id"]

    assert http.post(f"/v1/jobs/{queued_id}/cancel").json()["status"] == "cancelled"
    deadline = time.monotonic() + 120
    # training has begun (progress names the loading phase before the first step)
    while not (http.get(f"/v1/jobs/{running_id}").json()["progress"] or {}).get("global_step"):
        assert time.monotonic() < deadline, "the long job never reported a step"
        time.sleep(0.2)
    cancel = http.post(f"/v1/jobs/{running_id}/cancel").json()
    assert cancel["status"] == "cancelling"

    stopped = wait_for_status(http, running_id, FINAL, 60, api[0], worker)
    assert stopped["status"] == "cancelled"
    assert [t["status"] for t in stopped["transitions"]] == [
        "queued",
        "running",
        "cancelling",
        "cancelled",
    ]
    assert stopped["progress"]["epoch"] < 50
    steps = http.get(f"/v1/jobs/{running_id}/metrics", params={"kind": "step"}).json()["items"]
    time.sleep(2)
    later = http.get(f"/v1/jobs/{running_id}/metrics", params={"kind": "step"}).json()["items"]
    assert later == steps, "no metrics are written after the job ended"

    never = http.get(f"/v1/jobs/{queued_id}").json()
    assert [t["status"] for t in never["transitions"]] == ["queued", "cancelled"]
    assert never["started_at"] is None


def test_unloadable_data_fails_the_job_with_a_readable_error(http, api, worker, service_env):
    from pathlib import Path

    broken = Path(service_env["TASS_DATA_ROOTS"]) / "broken.tar.gz"
    broken.write_bytes(b"this is not a tarball")
    response = http.post(
        "/v1/jobs",
        json={
            "type": "train",
            "spec": TINY,
            "dataset": {"source": "image-folder", "path": str(broken)},
        },
    )
    job = wait_for_status(http, response.json()["id"], FINAL, 120, api[0], worker)
    assert job["status"] == "failed"
    assert "broken.tar.gz" in job["error"]
    # the error names the line of the job's log where the traceback starts
    found = re.search(r"traceback at line (\d+) of the job's log", job["error"])
    assert found, job["error"]
    page = http.get(f"/v1/jobs/{job['id']}/logs", params={"offset": found[1]}).json()
    assert "failed" in page["items"][0]["line"], page["items"][:3]
    assert any(item["line"].startswith("Traceback") for item in page["items"]), page["items"]


def test_the_jobs_log_holds_what_its_process_printed(trained, http):
    page = http.get(f"/v1/jobs/{trained['id']}/logs", params={"limit": 5000}).json()
    lines = [(item["stream"], item["line"]) for item in page["items"]]
    assert any(stream == "stderr" and "epoch 2/2  loss" in line for stream, line in lines), lines
    tail = http.get(f"/v1/jobs/{trained['id']}/logs", params={"tail": 2}).json()
    assert [item["line"] for item in tail["items"]] == [line for _, line in lines[-2:]]
    assert tail["finished"] is True
