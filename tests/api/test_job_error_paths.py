"""A failed job's error, as GET /v1/jobs/{id} serves it, never names a server folder: real
failures (a corrupt dataset file, a model file altered in the store) run on an in-process
worker against the service's own SQLite database, data root and artifact folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tass.core.apikeys import create_key
from tass.core.models import Job
from tass.core.objectstore import ObjectStore
from tass.core.redaction import path_free
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.evaluate_job import run_evaluate_job
from tass.worker.train_job import run_train_job
from tests.api.conftest import bearer
from tests.support.models import tiny_model_file
from tests.support.seed import seed_trained_model
from tests.support.worker_jobs import place_here

TINY = {"width": 0.25, "epochs": 1, "batch_size": 8, "jit_compile": "off"}


@pytest.fixture
def service(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The API and a worker sharing one configuration (every folder under tmp_path)."""
    root = tmp_path / "datasets"
    root.mkdir()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'tass.db'}",
        broker_url="memory://",
        artifact_url=(tmp_path / "artifacts").as_uri(),
        data_roots=[root],
        heartbeat_seconds=0.1,
        allowed_hosts=["testserver"],  # TestClient's Host
    )
    upgrade(settings.resolved_database_url)
    ctx = WorkerContext(settings)
    with ctx.sessions.begin() as session:
        _, key = create_key(session, "acme")
    with TestClient(create_app(settings), headers=bearer(key)) as client:
        yield client, ctx, root


def assert_path_free(error: str, *folders: Path) -> None:
    for folder in folders:
        assert str(folder) not in error
        assert str(folder.resolve()) not in error
    assert "/tmp/" not in error and "/home/" not in error
    assert not [word for word in error.split() if word.strip("'\"(),:").startswith("/")], error


def test_a_corrupt_dataset_file_fails_the_job_naming_it_as_the_user_did(service, tmp_path):
    client, ctx, root = service
    (root / "pets").mkdir()
    (root / "pets" / "train.tar.gz").write_bytes(b"\x1f\x8b this is no gzip archive" * 10)
    dataset = {"source": "image-folder", "path": "pets/train.tar.gz"}
    submitted = client.post("/v1/jobs", json={"type": "train", "spec": TINY, "dataset": dataset})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    place_here(ctx, job_id)
    run_train_job(ctx, job_id)

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert "pets/train.tar.gz" in job["error"], job["error"]  # the user's own name for it
    assert_path_free(job["error"], tmp_path, root, ctx.settings.data_dir)


def test_an_altered_model_file_fails_the_evaluation_without_its_working_folder(service, tmp_path):
    client, ctx, _ = service
    store = ObjectStore(ctx.settings.resolved_artifact_url)
    classes = [f"class_{c}" for c in range(10)]
    key = "models/seeded/attempt-1/model.keras"
    with ctx.sessions.begin() as session:
        model = seed_trained_model(
            session,
            store,
            tiny_model_file(tmp_path, classes, seed=1).read_bytes(),
            tenant="acme",
            key=key,
            class_names=classes,
        )
        model_id = model.id
    stored = tmp_path / "artifacts" / key
    stored.write_bytes(stored.read_bytes()[:-10] + b"0123456789")  # bit rot in the store
    dataset = {"source": "synthetic", "num_examples": 20}
    submitted = client.post(
        "/v1/jobs", json={"type": "evaluate", "model_id": model_id, "dataset": dataset}
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]

    place_here(ctx, job_id)
    run_evaluate_job(ctx, job_id)

    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed" and "sha256 mismatch" in job["error"], job["error"]
    assert_path_free(job["error"], tmp_path, ctx.settings.data_dir)


def test_an_error_recorded_before_redaction_is_served_without_its_paths(service):
    client, ctx, _ = service
    with ctx.sessions.begin() as session:
        job = Job(type="train", tenant="acme", status="failed", queue="train", dataset={})
        job.error = "DataError: /srv/tass/datasets/pets.tar.gz: not a gzip file"
        session.add(job)
        session.flush()
        job_id = job.id
    served = client.get(f"/v1/jobs/{job_id}").json()["error"]
    assert served == "DataError: .../pets.tar.gz: not a gzip file"
    listed = client.get("/v1/jobs", params={"status": "failed"}).json()["items"]
    assert [item["error"] for item in listed] == [served]


def test_path_free_keeps_names_urls_and_keys() -> None:
    roots = [Path("/srv/tass/datasets"), Path("/srv/tass")]
    assert path_free("/srv/tass/datasets/pets/a.tar.gz: bad", roots) == "pets/a.tar.gz: bad"
    assert path_free("open '/var/tmp/tass-1-x/model.keras' failed") == (
        "open '.../model.keras' failed"
    )
    for kept in ("s3://bucket/jobs/a/model.keras", "http://127.0.0.1:9000/b/k", "pets:train/a.png"):
        assert path_free(f"cannot read {kept}: gone", roots) == f"cannot read {kept}: gone"
    assert path_free("12 img/s, 3/5 batches") == "12 img/s, 3/5 batches"
