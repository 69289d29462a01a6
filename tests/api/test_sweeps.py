"""/v1/sweeps: a sweep starts its first trials as ordinary train jobs, every parameter name and
range is checked against TrainSpec (422 naming it), tenants do not see each other's sweeps,
quotas count trials, and cancelling a sweep cancels its trials."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tass.api.app import create_app
from tass.core.models import Sweep
from tass.core.queue import TRAIN_TASK
from tass.core.workers import WorkerInfo, report_alive
from tests.api.conftest import bearer

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


def sweep_body(**overrides: object) -> dict:
    body = {
        "name": "lr-search",
        "spec": {"epochs": 3, "width": 0.25, "batch_size": 32},
        "dataset": SYNTHETIC,
        "method": "random",
        "parameters": {
            "learning_rate": {"distribution": "log_uniform", "min": 0.001, "max": 0.5},
            "dropout": {"values": [0.1, 0.3]},
            "augmentation.translate": {"distribution": "uniform", "min": 0.0, "max": 0.2},
        },
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_trials": 5,
        "max_parallel": 2,
        "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
        "tags": {"team": "vision"},
    }
    return {**body, **overrides}


def count_sweeps(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(Sweep))


def test_a_sweep_starts_max_parallel_trials_as_train_jobs(client, drain_tasks):
    response = client.post("/v1/sweeps", json=sweep_body())

    assert response.status_code == 202
    sweep = response.json()
    assert response.headers["location"] == f"/v1/sweeps/{sweep['id']}"
    assert sweep["status"] == "running" and sweep["best"] is None
    trials = sweep["trials"]
    assert [t["number"] for t in trials] == [0, 1]
    assert drain_tasks() == [(TRAIN_TASK, [t["job_id"]]) for t in trials]
    for trial in trials:
        params = trial["params"]
        assert 0.001 <= params["learning_rate"] <= 0.5
        assert params["dropout"] in (0.1, 0.3)
        assert 0.0 <= params["augmentation.translate"] <= 0.2
        assert trial["status"] == "queued" and trial["stopped_early"] is False
        job = client.get(f"/v1/jobs/{trial['job_id']}").json()
        assert job["type"] == "train" and job["status"] == "queued"
        assert job["spec"]["learning_rate"] == params["learning_rate"]
        assert job["spec"]["augmentation"]["translate"] == params["augmentation.translate"]
        assert job["spec"]["width"] == 0.25 and job["tags"]["team"] == "vision"

    listed = client.get("/v1/jobs", params={"sweep": sweep["id"]}).json()["items"]
    assert sorted(j["id"] for j in listed) == sorted(t["job_id"] for t in trials)
    assert client.get(f"/v1/sweeps/{sweep['id']}").json()["trials"] == trials
    assert [s["id"] for s in client.get("/v1/sweeps").json()["items"]] == [sweep["id"]]


def test_grid_values_are_stored_as_the_spec_reads_them(client, drain_tasks):
    """A value the spec converts (the integer 1 for a float field) reaches the trial, its job
    and the decisions as the float the spec holds."""
    body = sweep_body(
        method="grid",
        parameters={"learning_rate": {"values": [1, 0.003]}},
        max_trials=2,
    )
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    trials = response.json()["trials"]
    assert sorted(t["params"]["learning_rate"] for t in trials) == [0.003, 1.0]
    for trial in trials:
        assert isinstance(trial["params"]["learning_rate"], float)
        job = client.get(f"/v1/jobs/{trial['job_id']}").json()
        assert job["spec"]["learning_rate"] == trial["params"]["learning_rate"]
    drain_tasks()


@pytest.mark.parametrize(
    ("parameters", "name"),
    [
        ({"learning_rat": {"values": [0.1]}}, "learning_rat"),
        ({"augmentation.nope": {"values": [1]}}, "augmentation.nope"),
        ({"augmentation": {"values": [{}]}}, "augmentation"),
        ({"dropout": {"values": [0.1, 1.5]}}, "dropout"),
        ({"dropout": {"distribution": "uniform", "min": 0.0, "max": 1.0}}, "dropout"),
        (
            {"learning_rate": {"distribution": "log_uniform", "min": 0.0, "max": 1.0}},
            "learning_rate",
        ),
        ({"learning_rate": {"distribution": "uniform", "min": 0.5, "max": 0.1}}, "learning_rate"),
        ({"epochs": {"distribution": "uniform", "min": 2, "max": 5}}, "epochs"),
        ({"batch_size": {"distribution": "int_uniform", "min": 0, "max": 64}}, "batch_size"),
        ({"optimizer": {"distribution": "uniform", "min": 0, "max": 1}}, "optimizer"),
        ({"optimizer": {"values": ["adam", "lbfgs"]}}, "optimizer"),
        ({"augmentation.crop_padding": {"values": [2, 99]}}, "augmentation.crop_padding"),
    ],
)
def test_bad_parameter_names_and_ranges_are_422_naming_the_parameter(
    client, db, drain_tasks, parameters, name
):
    before = count_sweeps(db)
    response = client.post("/v1/sweeps", json=sweep_body(parameters=parameters))

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "parameters", name]
    assert name in detail[0]["msg"]
    assert count_sweeps(db) == before and drain_tasks() == []


def test_a_grid_larger_than_max_trials_is_422(client, drain_tasks):
    parameters = {"dropout": {"values": [0.1, 0.2, 0.3]}, "width": {"values": [0.25, 0.5]}}
    response = client.post(
        "/v1/sweeps", json=sweep_body(method="grid", parameters=parameters, max_trials=5)
    )
    assert response.status_code == 422
    message = response.json()["detail"][0]["msg"]
    assert "6 points" in message and "dropout" in message and "width" in message
    assert drain_tasks() == []


def test_a_grid_sweep_takes_its_points_in_order(client, drain_tasks):
    parameters = {"dropout": {"values": [0.1, 0.2]}, "width": {"values": [0.25, 0.5]}}
    body = sweep_body(method="grid", parameters=parameters, max_trials=4, max_parallel=4)
    trials = client.post("/v1/sweeps", json=body).json()["trials"]
    assert [t["params"] for t in trials] == [
        {"dropout": 0.1, "width": 0.25},
        {"dropout": 0.1, "width": 0.5},
        {"dropout": 0.2, "width": 0.25},
        {"dropout": 0.2, "width": 0.5},
    ]
    assert len(drain_tasks()) == 4


def test_min_epochs_must_leave_room_to_stop(client, drain_tasks):
    body = sweep_body(early_stopping={"type": "asha", "min_epochs": 3, "reduction_factor": 2})
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "early_stopping", "min_epochs"]


def test_another_tenants_sweep_is_404(client, app, keys, drain_tasks):
    sweep = client.post("/v1/sweeps", json=sweep_body()).json()
    other = TestClient(app, headers=bearer(keys["globex"]))
    assert other.get(f"/v1/sweeps/{sweep['id']}").status_code == 404
    assert other.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 404
    assert other.get("/v1/sweeps").json()["items"] == []
    assert other.get("/v1/jobs", params={"sweep": sweep["id"]}).json()["items"] == []
    admin = TestClient(app, headers=bearer(keys["admin"]))
    assert admin.get(f"/v1/sweeps/{sweep['id']}").status_code == 200


def test_cancel_cancels_the_queued_trials_and_is_409_the_second_time(client, drain_tasks):
    sweep = client.post("/v1/sweeps", json=sweep_body()).json()
    response = client.post(f"/v1/sweeps/{sweep['id']}/cancel")

    assert response.status_code == 202
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert {t["status"] for t in cancelled["trials"]} == {"cancelled"}
    for trial in cancelled["trials"]:
        assert client.get(f"/v1/jobs/{trial['job_id']}").json()["status"] == "cancelled"
    assert client.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 409


def test_trials_count_against_the_tenant_quota(settings, db, keys):
    settings.max_active_jobs_per_tenant = 3
    application = create_app(settings)
    with TestClient(application, headers=bearer(keys["acme"])) as limited:
        application.state.session_factory = db
        first = limited.post("/v1/sweeps", json=sweep_body(max_parallel=2))
        assert len(first.json()["trials"]) == 2
        second = limited.post("/v1/sweeps", json=sweep_body(max_parallel=2))
        assert second.status_code == 202
        assert len(second.json()["trials"]) == 1  # one slot left under the quota
        third = limited.post("/v1/sweeps", json=sweep_body())
        assert third.status_code == 429 and "Retry-After" in third.headers


def test_a_sweeps_trials_take_its_priority_and_resources(client, db, drain_tasks):
    with db.begin() as session:
        report_alive(session, WorkerInfo("gpu-node", "h", 1, [], "gpu", ["0", "1"], "a100", 2))
    body = sweep_body(priority="high", resources={"gpus": 2, "pool": "a100"})
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    sweep = response.json()
    assert sweep["priority"] == "high"
    assert sweep["resources"] == {"gpus": 2, "workers": 1, "pool": "a100"}
    for trial in sweep["trials"]:
        job = client.get(f"/v1/jobs/{trial['job_id']}").json()
        assert job["priority"] == "high"
        assert job["resources"] == {"gpus": 2, "workers": 1, "pool": "a100"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"priority": "urgent"}, ["body", "priority"]),  # above the tenant's max_priority
        ({"priority": "asap"}, ["body", "priority"]),
        ({"resources": {"gpus": 8, "pool": "a100"}}, ["body", "resources"]),
    ],
)
def test_a_sweeps_scheduling_fields_are_checked_like_a_jobs(client, db, overrides, field):
    with db.begin() as session:
        report_alive(session, WorkerInfo("gpu-node", "h", 1, [], "gpu", ["0", "1"], "a100", 2))
    before = count_sweeps(db)
    response = client.post("/v1/sweeps", json=sweep_body(**overrides))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][: len(field)] == field
    assert count_sweeps(db) == before
