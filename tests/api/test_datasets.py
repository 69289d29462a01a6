"""/v1/datasets over HTTP (SQLite and PostgreSQL): streamed uploads with their digest, the size
limit and the tenant quota (413 naming them), tenant isolation, jobs on uploaded datasets
(404/409 naming them, the digest recorded) and delete while in use. The validation itself
runs on a worker (tests/integration/test_dataset_upload.py); here it is recorded directly."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tass.core.datasets import record_validation
from tass.core.models import UploadedDataset
from tass.core.queue import VALIDATE_DATASET_TASK
from tass.core.settings import Settings
from tests.api.conftest import bearer
from tests.support.archives import class_files, tar_gz, zip_bytes

GZIP = {"Content-Type": "application/gzip"}
MAX_BYTES = 64 * 1024
QUOTA = 100 * 1024
SUMMARY = {
    "num_examples": 12,
    "classes": ["cat", "dog"],
    "class_counts": {"train": {"cat": 6, "dog": 6}},
    "image_sizes": {"32x32": 12},
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The API tests' settings, with small dataset limits."""
    return settings.model_copy(
        update={"max_dataset_bytes": MAX_BYTES, "max_dataset_bytes_per_tenant": QUOTA}
    )


@pytest.fixture
def archive() -> bytes:
    return tar_gz(class_files())


def stored_keys(client) -> list[str]:
    return [obj.key for obj in client.app.state.store.list("datasets/")]


def upload(client, data: bytes, name: str = "pets", headers=GZIP):
    return client.post("/v1/datasets", params={"name": name}, content=data, headers=headers)


def mark(db, dataset_id: str, error: str | None = None) -> None:
    with db() as session:
        record_validation(session, dataset_id, None if error else SUMMARY, error)
        session.commit()


def train_on(client, dataset: dict[str, object]):
    return client.post("/v1/jobs", json={"type": "train", "dataset": dataset})


def test_upload_is_stored_with_its_digest_and_queued_for_validation(client, archive, drain_tasks):
    response = upload(client, archive)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "validating" and body["name"] == "pets"
    assert body["size"] == len(archive)
    assert body["sha256"] == hashlib.sha256(archive).hexdigest()
    assert response.headers["Location"] == f"/v1/datasets/{body['id']}"
    assert stored_keys(client) == [f"datasets/{body['id']}/archive.tar.gz"]
    assert drain_tasks() == [(VALIDATE_DATASET_TASK, [body["id"]])]
    assert client.get(f"/v1/datasets/{body['id']}").json()["sha256"] == body["sha256"]


def test_a_streamed_body_without_length_is_stored_whole(client, archive):
    chunks = (archive[i : i + 100] for i in range(0, len(archive), 100))
    response = upload(client, chunks)  # type: ignore[arg-type]
    assert response.status_code == 202, response.text
    assert response.json()["sha256"] == hashlib.sha256(archive).hexdigest()


def test_zip_archives_are_accepted(client):
    data = zip_bytes(class_files())
    response = upload(client, data, headers={"Content-Type": "application/zip"})
    assert response.status_code == 202, response.text
    assert response.json()["archive_format"] == "zip"


@pytest.mark.parametrize("content_type", [None, "application/json", "image/png"])
def test_other_content_types_are_415(client, archive, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = upload(client, archive, headers=headers)
    assert response.status_code == 415
    assert "application/gzip" in response.json()["detail"]


def test_empty_body_and_bad_names_are_422(client, archive):
    empty = upload(client, b"")
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body"]
    assert upload(client, archive, name="a/b").status_code == 422
    no_name = client.post("/v1/datasets", content=archive, headers=GZIP)
    assert no_name.status_code == 422 and no_name.json()["detail"][0]["loc"] == ["query", "name"]
    assert stored_keys(client) == []


def test_an_archive_over_the_size_limit_is_413_and_nothing_is_kept(client, db):
    big = b"x" * (MAX_BYTES + 1)
    declared = upload(client, big)
    assert declared.status_code == 413
    assert "TASS_MAX_DATASET_BYTES" in declared.json()["detail"]
    streamed = upload(client, (big[i : i + 4096] for i in range(0, len(big), 4096)))
    assert streamed.status_code == 413
    assert "TASS_MAX_DATASET_BYTES" in streamed.json()["detail"]
    assert stored_keys(client) == []
    with db() as session:
        assert session.scalars(select(UploadedDataset)).all() == []


def test_the_tenant_quota_is_413_naming_it(client, app, keys):
    chunk = b"y" * (MAX_BYTES - 10)
    assert upload(client, chunk).status_code == 202
    over = upload(client, chunk)
    assert over.status_code == 413
    detail = over.json()["detail"]
    assert "TASS_MAX_DATASET_BYTES_PER_TENANT" in detail and "'acme'" in detail
    assert len(stored_keys(client)) == 1
    globex = TestClient(app, headers=bearer(keys["globex"]))  # a quota of its own
    assert upload(globex, chunk).status_code == 202


def test_other_tenants_datasets_are_404(client, app, keys, archive, db):
    dataset_id = upload(client, archive).json()["id"]
    mark(db, dataset_id)
    globex = TestClient(app, headers=bearer(keys["globex"]))
    assert globex.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert globex.delete(f"/v1/datasets/{dataset_id}").status_code == 404
    assert globex.get("/v1/datasets").json()["items"] == []
    refused = train_on(globex, {"source": "dataset", "id": dataset_id})
    assert refused.status_code == 404 and dataset_id in refused.json()["detail"]
    assert [d["id"] for d in client.get("/v1/datasets").json()["items"]] == [dataset_id]


def test_jobs_need_a_ready_dataset_and_record_its_digest(client, archive, db):
    uploaded = upload(client, archive).json()
    dataset_id = uploaded["id"]
    waiting = train_on(client, {"source": "dataset", "id": dataset_id, "limit": 10})
    assert waiting.status_code == 409
    assert dataset_id in waiting.json()["detail"] and "validating" in waiting.json()["detail"]
    mark(db, dataset_id)
    ready = client.get(f"/v1/datasets/{dataset_id}").json()
    assert ready["status"] == "ready" and ready["class_counts"] == SUMMARY["class_counts"]
    job = train_on(client, {"source": "dataset", "id": dataset_id, "limit": 10})
    assert job.status_code == 202, job.text
    assert job.json()["dataset"]["sha256"] == uploaded["sha256"]
    wrong = train_on(client, {"source": "dataset", "id": dataset_id, "sha256": "0" * 64})
    assert wrong.status_code == 409 and "sha256" in wrong.json()["detail"]
    missing = train_on(client, {"source": "dataset"})
    assert missing.status_code == 422


def test_a_failed_dataset_shows_why_and_cannot_be_used(client, archive, db):
    dataset_id = upload(client, archive).json()["id"]
    mark(db, dataset_id, error="pets:train/cat/0001.png: not a decodable image")
    shown = client.get(f"/v1/datasets/{dataset_id}").json()
    assert shown["status"] == "failed" and "train/cat/0001.png" in shown["error"]
    assert train_on(client, {"source": "dataset", "id": dataset_id}).status_code == 409
    listed = client.get("/v1/datasets", params={"status": "failed"}).json()["items"]
    assert [d["id"] for d in listed] == [dataset_id]


def test_delete_is_409_while_a_job_uses_it_then_removes_the_archive(client, archive, db):
    dataset_id = upload(client, archive).json()["id"]
    mark(db, dataset_id)
    job_id = train_on(client, {"source": "dataset", "id": dataset_id}).json()["id"]
    busy = client.delete(f"/v1/datasets/{dataset_id}")
    assert busy.status_code == 409 and job_id in busy.json()["detail"]
    assert client.post(f"/v1/jobs/{job_id}/cancel").status_code in (200, 202)
    assert client.delete(f"/v1/datasets/{dataset_id}").status_code == 204
    assert client.get(f"/v1/datasets/{dataset_id}").status_code == 404
    assert stored_keys(client) == []


def test_s3_paths_outside_the_service_bucket_are_refused(client):
    response = train_on(client, {"source": "image-folder", "path": "s3://other/data.tar.gz"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "dataset", "path"]


def test_a_running_sweep_on_a_dataset_holds_it_and_records_the_digest(client, archive, db):
    uploaded = upload(client, archive).json()
    dataset_id = uploaded["id"]
    mark(db, dataset_id)
    sweep = client.post(
        "/v1/sweeps",
        json={
            "spec": {"epochs": 1, "width": 0.25, "batch_size": 8},
            "dataset": {"source": "dataset", "id": dataset_id},
            "method": "grid",
            "parameters": {"dropout": {"values": [0.1, 0.3]}},
            "objective": {"metric": "val_accuracy", "goal": "maximize"},
            "max_trials": 2,
        },
    )
    assert sweep.status_code == 202, sweep.text
    trials = client.get("/v1/jobs", params={"sweep": sweep.json()["id"]}).json()["items"]
    assert trials and {t["dataset"]["sha256"] for t in trials} == {uploaded["sha256"]}
    busy = client.delete(f"/v1/datasets/{dataset_id}")
    assert busy.status_code == 409 and sweep.json()["id"] in busy.json()["detail"]


def test_evaluations_on_another_tenants_dataset_are_404(client, app, keys, archive, db):
    dataset_id = upload(client, archive).json()["id"]
    mark(db, dataset_id)
    globex = TestClient(app, headers=bearer(keys["globex"]))
    refused = globex.post(
        "/v1/jobs",
        json={
            "type": "evaluate",
            "model_id": "any",
            "dataset": {"source": "dataset", "id": dataset_id},
        },
    )
    assert refused.status_code == 404 and dataset_id in refused.json()["detail"]
