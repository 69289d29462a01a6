"""Uploaded datasets over real processes (uvicorn, a Celery worker, PostgreSQL, Redis, an S3
server): upload a generated archive, a worker validates it, a job trains on it and records its
digest; bad archives fail with their reason; s3:// paths inside the service bucket train too."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from tests.support.archives import class_files, png_bytes, tar_gz, zip_bytes
from tests.support.processes import Service, start_api, start_worker, wait_for_status
from tests.support.servers import RedisServer

pytestmark = pytest.mark.integration

FINAL = {"succeeded", "failed", "cancelled"}
ONE_EPOCH = {
    "width": 0.25,
    "epochs": 1,
    "batch_size": 8,
    "validation_split": 0.0,
    "jit_compile": "off",
}
GZIP = {"Content-Type": "application/gzip"}


@pytest.fixture(scope="module")
def env(service_env: dict[str, str], redis_server: RedisServer, tmp_path_factory) -> dict[str, str]:
    """The session's services, with a broker database of this module's own (db 1 of the run's
    Redis): the session's worker, with another data folder, never takes this module's tasks."""
    data_dir = str(tmp_path_factory.mktemp("datasets-data"))
    return {**service_env, "TASS_BROKER_URL": redis_server.url(1), "TASS_DATA_DIR": data_dir}


@pytest.fixture(scope="module")
def api(env: dict[str, str], log_dir: Path) -> Iterator[tuple[Service, str]]:
    service, url = start_api(env, log_dir)
    yield service, url
    service.stop()


@pytest.fixture(scope="module")
def worker(env: dict[str, str], log_dir: Path) -> Iterator[Service]:
    service = start_worker(env, log_dir, name="datasets-worker")
    yield service
    service.stop()


@pytest.fixture(scope="module")
def http(api: tuple[Service, str], api_key: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=api[1], timeout=30, headers=headers) as client:
        yield client


def wait_validated(http, dataset_id: str, timeout: float, *services) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dataset = http.get(f"/v1/datasets/{dataset_id}").json()
        if dataset["status"] != "validating":
            return dataset
        time.sleep(0.5)
    logs = "\n".join(service.log_tail() for service in services)
    raise AssertionError(f"dataset {dataset_id} still validating:\n{logs}")


def upload(http, data: bytes, name: str, headers=GZIP) -> dict:
    response = http.post("/v1/datasets", params={"name": name}, content=data, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def ready(http, api, worker) -> tuple[dict, bytes]:
    archive = tar_gz(class_files(per_class=8))
    uploaded = upload(http, archive, "pets")
    return wait_validated(http, uploaded["id"], 180, api[0], worker), archive


def test_an_upload_is_validated_trained_and_evaluated_on_and_recorded(ready, http, api, worker):
    dataset, archive = ready
    assert dataset["status"] == "ready", dataset["error"]
    assert dataset["sha256"] == hashlib.sha256(archive).hexdigest()
    assert dataset["num_examples"] == 16 and dataset["classes"] == ["cat", "dog"]
    assert dataset["class_counts"] == {"train": {"cat": 8, "dog": 8}}
    assert dataset["image_sizes"] == {"32x32": 16}
    body = {
        "type": "train",
        "spec": ONE_EPOCH,
        "dataset": {"source": "dataset", "id": dataset["id"], "limit": 12},
    }
    submitted = http.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job = wait_for_status(http, submitted.json()["id"], FINAL, 300, api[0], worker)
    assert job["status"] == "succeeded", job["error"]
    assert job["dataset"]["sha256"] == dataset["sha256"]
    assert job["progress"]["epoch"] == 1
    evaluation = http.post(
        "/v1/jobs",
        json={
            "type": "evaluate",
            "model_id": job["model_id"],
            "dataset": {"source": "dataset", "id": dataset["id"]},
        },
    )
    assert evaluation.status_code == 202, evaluation.text
    evaluated = wait_for_status(http, evaluation.json()["id"], FINAL, 300, api[0], worker)
    assert evaluated["status"] == "succeeded", evaluated["error"]
    assert evaluated["dataset"]["sha256"] == dataset["sha256"]
    assert sum(map(sum, evaluated["result"]["confusion_matrix"])) == 16
    deleted = http.delete(f"/v1/datasets/{dataset['id']}")
    assert deleted.status_code == 204
    assert http.get(f"/v1/datasets/{dataset['id']}").status_code == 404


@pytest.mark.parametrize(
    ("files_or_bytes", "content_type", "reason"),
    [
        (b"\x1f\x8b\x08" + b"not really gzip" * 20, "application/gzip", "not a readable .tar.gz"),
        (
            {**class_files(per_class=2), "train/dog/notes.png": b"plain text, not pixels" * 3},
            "application/zip",
            "train/dog/notes.png: not a decodable image",
        ),
        ({"cat.png": png_bytes(9, 9, 9)}, "application/gzip", "no images in class subfolders"),
    ],
    ids=["corrupt", "non-image", "no-class-folders"],
)
def test_bad_archives_fail_with_their_reason(
    http, api, worker, files_or_bytes, content_type, reason
):
    if isinstance(files_or_bytes, dict):
        pack = zip_bytes if content_type == "application/zip" else tar_gz
        data = pack(files_or_bytes)
    else:
        data = files_or_bytes
    uploaded = upload(http, data, "broken", headers={"Content-Type": content_type})
    dataset = wait_validated(http, uploaded["id"], 180, api[0], worker)
    assert dataset["status"] == "failed"
    assert reason in dataset["error"] and dataset["error"].startswith("broken")
    refused = http.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "dataset", "id": dataset["id"]}}
    )
    assert refused.status_code == 409


def test_an_s3_archive_in_the_service_bucket_trains(http, api, worker, s3_env):
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
    )
    s3.put_object(Bucket="tass", Key="incoming/pets.tar.gz", Body=tar_gz(class_files(4)))
    body = {
        "type": "train",
        "spec": ONE_EPOCH,
        "dataset": {"source": "image-folder", "path": "s3://tass/incoming/pets.tar.gz"},
    }
    submitted = http.post("/v1/jobs", json=body)
    assert submitted.status_code == 202, submitted.text
    job = wait_for_status(http, submitted.json()["id"], FINAL, 300, api[0], worker)
    assert job["status"] == "succeeded", job["error"]
    elsewhere = {**body, "dataset": {"source": "image-folder", "path": "s3://other/x.tar.gz"}}
    refused = http.post("/v1/jobs", json=elsewhere)
    assert refused.status_code == 422 and "bucket" in refused.text
