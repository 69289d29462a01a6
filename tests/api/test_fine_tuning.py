"""Fine-tuning at submit: spec.init_from (a model id, NAME@ALIAS or NAME:VERSION of the
caller's own tenant) is recorded as the model id it names, the parent's network fields fill
those the caller left unset, and a reference to no model (or another tenant's) is a 422."""

from __future__ import annotations

import pytest

from tass.core.models import Job
from tass.core.objectstore import ObjectStore
from tass.core.registry import register_version
from tests.support.seed import seed_trained_model

SYNTHETIC = {"source": "synthetic", "num_examples": 100, "num_classes": 2}
PARENT_SPEC = {"model": "alexnet-seed", "width": 1.0, "image_size": 48, "channels": 1}


@pytest.fixture
def parents(db, settings) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """acme's model (registered as base:1, alias prod) and globex's model."""
    store = ObjectStore(settings.resolved_artifact_url)
    ids = {}
    with db() as session:
        for tenant in ("acme", "globex"):
            model = seed_trained_model(session, store, b"keras", tenant=tenant, class_names=["a"])
            job = session.get(Job, model.job_id)
            job.spec = dict(PARENT_SPEC)
            ids[tenant] = model.id
            if tenant == "acme":
                register_version(session, "acme", "base", model)
        session.commit()
    return ids


def submit(client, spec):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", json={"type": "train", "spec": spec, "dataset": SYNTHETIC})


def test_init_from_is_recorded_as_the_model_id_with_the_parents_network(client, parents):
    for ref in (parents["acme"], "base:1"):
        response = submit(client, {"init_from": ref, "freeze": "all-but-head", "epochs": 2})
        assert response.status_code == 202, response.text
        spec = response.json()["spec"]
        assert spec["init_from"] == parents["acme"]
        assert {key: spec[key] for key in PARENT_SPEC} == PARENT_SPEC
        assert spec["freeze"] == "all-but-head" and spec["epochs"] == 2
    # what the caller sets stays theirs (the worker fails the job if the weights do not fit)
    own = submit(client, {"init_from": "base:1", "image_size": 64}).json()["spec"]
    assert own["image_size"] == 64 and own["model"] == "alexnet-seed"


def test_an_init_from_that_names_no_model_of_the_tenant_is_422(client, parents):
    for ref in ("nope", "base:7", "base@prod", parents["globex"]):
        response = submit(client, {"init_from": ref})
        assert response.status_code == 422, (ref, response.text)
        assert "spec.init_from" in response.text
    freeze_alone = submit(client, {"freeze": "all-but-head"})
    assert freeze_alone.status_code == 422 and "freeze needs starting weights" in freeze_alone.text


def test_a_sweeps_trials_fine_tune_the_model_its_spec_names_at_creation(client, parents):
    body = {
        "name": "tune",
        "spec": {"epochs": 2, "init_from": "base:1", "freeze": "all-but-head"},
        "dataset": SYNTHETIC,
        "method": "random",
        "parameters": {"learning_rate": {"distribution": "log_uniform", "min": 0.001, "max": 0.1}},
        "objective": {"metric": "val_accuracy", "goal": "maximize"},
        "max_trials": 2,
        "max_parallel": 2,
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    jobs = [job for job in client.get("/v1/jobs").json()["items"] if job["name"]]
    assert sorted(job["name"] for job in jobs) == ["tune-trial-0", "tune-trial-1"]
    for job in jobs:
        assert job["spec"]["init_from"] == parents["acme"]
        assert job["spec"]["model"] == "alexnet-seed"
    refused = client.post("/v1/sweeps", json={**body, "spec": {"init_from": "nope"}})
    assert refused.status_code == 422 and "spec.init_from" in refused.text
