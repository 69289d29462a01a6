"""Numbers are numbers: a string or a boolean sent for a numeric field (`"epochs": "1"`,
`"epochs": true`) is a 422 naming the field, never silently read as 1; a float field still
takes a JSON integer, and a spec stored from such a body validates again when read back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tass.contract.spec import TrainSpec
from tass.core.models import Job

SYNTHETIC = {"source": "synthetic", "num_examples": 100}
WRONG_TYPES = ["1", True]


def train(spec: dict | None = None, dataset: dict | None = None) -> dict:
    return {"type": "train", "spec": spec or {}, "dataset": dataset or SYNTHETIC}


def sweep(**overrides: object) -> dict:
    body = {
        "spec": {"epochs": 3},
        "dataset": SYNTHETIC,
        "method": "random",
        "parameters": {"learning_rate": {"distribution": "log_uniform", "min": 0.01, "max": 0.5}},
        "max_trials": 2,
    }
    return {**body, **overrides}


def locs(response) -> list[list]:
    return [error["loc"] for error in response.json()["detail"]]


JOB_FIELDS = [
    (lambda v: train({"epochs": v}), ["body", "train", "spec", "epochs"]),
    (lambda v: train({"seed": v}), ["body", "train", "spec", "seed"]),
    (lambda v: train({"batch_size": v}), ["body", "train", "spec", "batch_size"]),
    (lambda v: train({"learning_rate": v}), ["body", "train", "spec", "learning_rate"]),
    (lambda v: train({"width": v}), ["body", "train", "spec", "width"]),
    (lambda v: train({"max_runtime_seconds": v}), ["body", "train", "spec", "max_runtime_seconds"]),
    (
        lambda v: train({"early_stopping_patience": v}),
        ["body", "train", "spec", "early_stopping_patience"],
    ),
    (
        lambda v: train({"augmentation": {"crop_padding": v}}),
        ["body", "train", "spec", "augmentation", "crop_padding"],
    ),
    (
        lambda v: train({"augmentation": {"translate": v}}),
        ["body", "train", "spec", "augmentation", "translate"],
    ),
    (lambda v: train(dataset={**SYNTHETIC, "limit": v}), ["body", "train", "dataset", "limit"]),
    (
        lambda v: train(dataset={"source": "synthetic", "num_examples": v}),
        ["body", "train", "dataset", "num_examples"],
    ),
]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=["string", "boolean"])
@pytest.mark.parametrize(("body", "loc"), JOB_FIELDS)
def test_a_job_number_sent_as_a_string_or_boolean_is_422(client, body, loc, value):
    response = client.post("/v1/jobs", json=body(value))
    assert response.status_code == 422, response.text
    assert loc in locs(response), response.text


def test_a_boolean_sent_as_a_string_is_422(client):
    body = {"type": "evaluate", "model_id": "m", "dataset": SYNTHETIC, "test_time_flip": "true"}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert ["body", "evaluate", "test_time_flip"] in locs(response)


def test_a_float_field_takes_a_json_integer_and_the_stored_spec_validates_again(
    client, db, drain_tasks
):
    response = client.post("/v1/jobs", json=train({"width": 1, "learning_rate": 1, "epochs": 2}))
    assert response.status_code == 202, response.text
    assert response.json()["spec"]["width"] == 1.0
    with db() as session:
        stored = session.scalars(select(Job.spec).where(Job.id == response.json()["id"])).one()
    spec = TrainSpec.model_validate(stored)  # what the worker does with it
    assert (spec.width, spec.learning_rate, spec.epochs) == (1.0, 1.0, 2)
    drain_tasks()


SWEEP_FIELDS = [
    (lambda v: sweep(max_trials=v), ["body", "max_trials"]),
    (lambda v: sweep(max_parallel=v), ["body", "max_parallel"]),
    (lambda v: sweep(spec={"epochs": v}), ["body", "spec", "epochs"]),
    (
        lambda v: sweep(early_stopping={"type": "asha", "min_epochs": v}),
        ["body", "early_stopping", "min_epochs"],
    ),
    (
        lambda v: sweep(parameters={"dropout": {"distribution": "uniform", "min": v, "max": 0.5}}),
        ["body", "parameters", "dropout"],
    ),
    (
        lambda v: sweep(parameters={"dropout": {"distribution": "uniform", "min": 0.0, "max": v}}),
        ["body", "parameters", "dropout"],
    ),
    (lambda v: sweep(parameters={"epochs": {"values": [2, v]}}), ["body", "parameters", "epochs"]),
    (
        lambda v: sweep(parameters={"learning_rate": {"values": [v]}}),
        ["body", "parameters", "learning_rate"],
    ),
]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=["string", "boolean"])
@pytest.mark.parametrize(("body", "loc"), SWEEP_FIELDS)
def test_a_sweep_number_sent_as_a_string_or_boolean_is_422(client, body, loc, value):
    response = client.post("/v1/sweeps", json=body(value))
    assert response.status_code == 422, response.text
    assert any(found[: len(loc)] == loc for found in locs(response)), response.text


@pytest.mark.parametrize("value", WRONG_TYPES, ids=["string", "boolean"])
def test_a_registry_alias_version_sent_as_a_string_or_boolean_is_422(client, value):
    response = client.put("/v1/registry/pets/aliases/prod", json={"version": value})
    assert response.status_code == 422, response.text
    assert ["body", "version"] in locs(response)
