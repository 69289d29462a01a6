"""Submitting jobs: what is accepted, what is refused, and that nothing half-written remains."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tass.core.models import Job
from tass.core.objectstore import ObjectStore
from tass.core.queue import TRAIN_TASK
from tests.support.seed import seed_trained_model

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def count_jobs(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_train_job_is_stored_queued_and_enqueued_after_commit(client, db, drain_tasks):
    body = {
        "type": "train",
        "spec": {"epochs": 2, "batch_size": 32},
        "dataset": SYNTHETIC,
        "name": "first",
        "tags": {"team": "vision"},
    }
    response = client.post("/v1/jobs", json=body)

    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["attempt"] == 1
    assert job["spec"]["epochs"] == 2 and job["spec"]["model"] == "alexnet-cifar"
    assert job["tags"] == {"team": "vision"}
    assert [t["status"] for t in job["transitions"]] == ["queued"]
    assert drain_tasks() == [(TRAIN_TASK, [job["id"]])]
    assert client.get(f"/v1/jobs/{job['id']}").json()["name"] == "first"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 100000}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"model": "resnet-9000"}, "model"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"dropout": 1.5}, "dropout"),
        ({"epochs": "ten"}, "epochs"),
        ({"surprise": 1}, "surprise"),
        ({"validation_split": 0.9}, "validation_split"),
        ({"augmentation": {"crop_padding": 99}}, "crop_padding"),
    ],
)
def test_bad_hyperparameters_are_422_naming_the_field(client, db, drain_tasks, spec, field):
    before = count_jobs(db)
    response = client.post("/v1/jobs", json={"type": "train", "spec": spec, "dataset": SYNTHETIC})

    assert response.status_code == 422
    assert field in str(response.json()["detail"])
    assert count_jobs(db) == before
    assert drain_tasks() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "train", "dataset": {"source": "imagenet"}}, "source"),
        ({"type": "train"}, "dataset"),
        ({"type": "fly", "dataset": SYNTHETIC}, "type"),
        ({"type": "train", "dataset": SYNTHETIC, "status": "succeeded"}, "status"),
        ({"type": "train", "dataset": SYNTHETIC, "attempt": 5}, "attempt"),
        ({"type": "train", "dataset": {"source": "image-folder"}}, "path"),
        ({"type": "evaluate", "dataset": SYNTHETIC}, "model_id"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(client, db, body, field):
    before = count_jobs(db)
    response = client.post("/v1/jobs", json=body)

    assert response.status_code == 422
    assert field in str(response.json()["detail"])
    assert count_jobs(db) == before


def test_malformed_json_is_422(client):
    response = client.post(
        "/v1/jobs", content=b'{"type": "train",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "JSON" in str(response.json()["detail"])


def test_evaluating_a_model_that_does_not_exist_is_422(client, db):
    before = count_jobs(db)
    response = client.post(
        "/v1/jobs", json={"type": "evaluate", "model_id": "nope", "dataset": SYNTHETIC}
    )
    assert response.status_code == 422
    assert "model_id" in str(response.json()["detail"])
    assert count_jobs(db) == before


@pytest.mark.parametrize(
    "path",
    [
        "/etc",
        "../../etc/passwd",
        "images/../../../etc",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data",
        "missing-folder",
    ],
)
def test_dataset_paths_outside_the_data_roots_are_refused(client, db, path):
    before = count_jobs(db)
    response = client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "image-folder", "path": path}}
    )
    assert response.status_code == 422
    assert "dataset.path" in str(response.json()["detail"])
    assert count_jobs(db) == before


def test_dataset_path_inside_a_root_is_resolved_and_accepted(client, data_root, drain_tasks):
    response = client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "image-folder", "path": "images"}}
    )
    assert response.status_code == 202
    # recorded as it lies under the data root: the job never shows the server's folders
    assert response.json()["dataset"]["path"] == "images"


def test_an_absolute_dataset_path_is_recorded_relative_to_the_data_root(client, data_root):
    written = str(data_root / "images")
    response = client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "image-folder", "path": written}}
    )
    assert response.status_code == 202, response.text
    job = client.get(f"/v1/jobs/{response.json()['id']}").json()
    assert job["dataset"]["path"] == "images"
    assert str(data_root) not in response.text and str(data_root.resolve()) not in str(job)


def test_symlink_escaping_the_root_is_refused(client, data_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_root / "sneaky").symlink_to(outside)
    response = client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "image-folder", "path": "sneaky"}}
    )
    assert response.status_code == 422


def test_a_broker_outage_does_not_refuse_a_submit_the_job_waits_in_the_database(
    client, db, monkeypatch
):
    from kombu.exceptions import OperationalError

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(client.app.state.producer, "send_task", refuse)
    response = client.post("/v1/jobs", json={"type": "train", "dataset": SYNTHETIC})

    assert response.status_code == 202
    with db() as session:
        job = session.get(Job, response.json()["id"])
        assert job.status == "queued" and job.placement is None


def test_idempotency_key_returns_the_same_job_and_refuses_another_body(
    client, anonymous, keys, db, drain_tasks
):
    body = {"type": "train", "dataset": SYNTHETIC}
    headers = {"Idempotency-Key": "nightly-2026-11-28"}
    first = client.post("/v1/jobs", json=body, headers=headers)
    again = client.post("/v1/jobs", json=body, headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert len(drain_tasks()) == 1, "the replay enqueues nothing"

    other = client.post("/v1/jobs", json={**body, "name": "different"}, headers=headers)
    assert other.status_code == 409
    assert "Idempotency-Key" in other.json()["detail"]

    globex = anonymous.post(
        "/v1/jobs", json=body, headers={**headers, "Authorization": f"Bearer {keys['globex']}"}
    )
    assert globex.status_code == 202
    assert globex.json()["id"] != first.json()["id"], "keys are scoped to the tenant"


def test_a_job_on_real_images_records_no_synthetic_example_count(
    client, data_root, db, settings, drain_tasks
):
    """An evaluation of a 1,000-image folder said `num_examples: 2000` (the synthetic source's
    default) in its dataset: only the synthetic source records how many images it makes."""
    with db() as session:
        store = ObjectStore(settings.resolved_artifact_url)
        model = seed_trained_model(session, store, b"weights", tenant="acme").id
        session.commit()
    evaluation = client.post(
        "/v1/jobs",
        json={
            "type": "evaluate",
            "model_id": model,
            "dataset": {"source": "image-folder", "path": "images", "limit": 1000},
        },
    )
    synthetic = client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "synthetic", "num_examples": 300}}
    )

    assert evaluation.status_code == synthetic.status_code == 202, evaluation.text
    recorded = evaluation.json()["dataset"]
    assert "num_examples" not in recorded and "num_classes" not in recorded
    assert recorded["limit"] == 1000 and recorded["source"] == "image-folder"
    assert synthetic.json()["dataset"]["num_examples"] == 300
    stored = client.get(f"/v1/jobs/{evaluation.json()['id']}").json()["dataset"]
    assert stored == recorded
