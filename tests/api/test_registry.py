"""The model registry: names, numbered versions, aliases, and model references (`ID`,
`NAME@ALIAS`, `NAME:VERSION`) accepted wherever a model id is."""

from __future__ import annotations

import hashlib

import pytest

from tass.core.objectstore import ObjectStore
from tests.api.conftest import bearer
from tests.support.seed import seed_trained_model

SYNTHETIC = {"source": "synthetic", "num_examples": 100}


@pytest.fixture
def seed(db, settings):
    """Returns a function storing a trained model for a tenant; gives (model id, file bytes)."""
    store = ObjectStore(settings.resolved_artifact_url)

    def make(tenant: str = "acme", accuracy: float = 0.5) -> tuple[str, bytes]:
        payload = f"model of {tenant} at {accuracy}".encode() * 50
        with db() as session:
            model = seed_trained_model(
                session, store, payload, tenant=tenant, metrics={"val_accuracy": accuracy}
            )
            session.commit()
            return model.id, payload

    return make


def register(client, name: str, ref: str):
    return client.post(f"/v1/registry/{name}/versions", json={"model_id": ref})


def test_registry_lifecycle_versions_aliases_description(client, seed):
    first, _ = seed(accuracy=0.6)
    second, _ = seed(accuracy=0.8)

    created = register(client, "cats", first)
    assert created.status_code == 201
    assert created.json() == {"name": "cats", "version": 1, "model_id": first, "created": True}
    assert register(client, "cats", second).json()["version"] == 2
    again = register(client, "cats", first)  # the same model keeps its version
    assert again.status_code == 200
    assert again.json() == {"name": "cats", "version": 1, "model_id": first, "created": False}

    moved = client.put("/v1/registry/cats/aliases/production", json={"version": 2})
    assert moved.status_code == 200
    assert moved.json() == {"name": "cats", "alias": "production", "version": 2, "model_id": second}
    patched = client.patch(
        "/v1/registry/cats", json={"description": "cat detector", "tags": {"team": "vision"}}
    )
    assert patched.status_code == 200

    shown = client.get("/v1/registry/cats").json()
    assert shown["description"] == "cat detector" and shown["tags"] == {"team": "vision"}
    assert shown["latest_version"] == 2
    assert shown["aliases"] == {"production": 2}
    assert [(v["version"], v["model_id"]) for v in shown["versions"]] == [(1, first), (2, second)]
    assert shown["versions"][1]["metrics"] == {"val_accuracy": 0.8}
    assert shown["versions"][1]["dataset"] == {"source": "synthetic"}
    assert shown["versions"][0]["job_id"] == client.get(f"/v1/models/{first}").json()["job_id"]

    register(client, "dogs", second)
    listed = client.get("/v1/registry").json()
    assert [(i["name"], i["latest_version"], i["aliases"]) for i in listed["items"]] == [
        ("cats", 2, {"production": 2}),
        ("dogs", 1, {}),
    ]
    page = client.get("/v1/registry", params={"limit": 1}).json()
    assert [i["name"] for i in page["items"]] == ["cats"]
    rest = client.get("/v1/registry", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    assert [i["name"] for i in rest["items"]] == ["dogs"] and rest["next_cursor"] is None

    assert client.delete("/v1/registry/cats/aliases/production").status_code == 204
    assert client.get("/v1/registry/cats").json()["aliases"] == {}
    assert client.delete("/v1/registry/cats/aliases/production").status_code == 404


def test_a_version_is_deleted_once_no_alias_points_at_it(client, seed):
    first, _ = seed(accuracy=0.6)
    second, _ = seed(accuracy=0.8)
    register(client, "cats", first), register(client, "cats", second)
    client.put("/v1/registry/cats/aliases/production", json={"version": 1})

    refused = client.delete("/v1/registry/cats/versions/1")
    assert refused.status_code == 409 and "production" in refused.json()["detail"]
    assert client.get("/v1/models/cats:1").json()["id"] == first

    client.put("/v1/registry/cats/aliases/production", json={"version": 2})
    assert client.delete("/v1/registry/cats/versions/1").status_code == 204
    shown = client.get("/v1/registry/cats").json()
    assert [v["version"] for v in shown["versions"]] == [2] and shown["latest_version"] == 2
    assert client.get("/v1/models/cats:1").status_code == 404
    assert client.get(f"/v1/models/{first}").status_code == 200  # the model itself stays
    assert client.delete("/v1/registry/cats/versions/1").status_code == 404
    assert client.delete("/v1/registry/dogs/versions/1").status_code == 404
    third, _ = seed(accuracy=0.9)
    assert register(client, "cats", third).json()["version"] == 3  # numbers are not reused


def test_an_alias_move_takes_effect_on_the_next_request(client, seed):
    first, _ = seed()
    second, _ = seed()
    register(client, "cats", first)
    register(client, "cats", second)

    client.put("/v1/registry/cats/aliases/production", json={"version": 1})
    assert client.get("/v1/models/cats@production").json()["id"] == first
    client.put("/v1/registry/cats/aliases/production", json={"version": 2})
    assert client.get("/v1/models/cats@production").json()["id"] == second
    client.delete("/v1/registry/cats/aliases/production")
    gone = client.get("/v1/models/cats@production")
    assert gone.status_code == 404 and "production" in gone.json()["detail"]


def test_references_resolve_in_get_download_and_evaluate(client, seed, drain_tasks):
    first, _ = seed()
    second, payload = seed()
    register(client, "cats", first)
    register(client, "cats", second)
    client.put("/v1/registry/cats/aliases/staging", json={"version": 2})

    for ref in (second, "cats:2", "cats@staging"):
        assert client.get(f"/v1/models/{ref}").json()["id"] == second
        download = client.get(f"/v1/models/{ref}/download")
        assert download.status_code == 200 and download.content == payload
        assert download.headers["x-checksum-sha256"] == hashlib.sha256(payload).hexdigest()
        assert f"{second}.keras" in download.headers["content-disposition"]
    assert client.get("/v1/models/cats:1").json()["id"] == first

    job = client.post(
        "/v1/jobs", json={"type": "evaluate", "model_id": "cats@staging", "dataset": SYNTHETIC}
    )
    assert job.status_code == 202
    assert job.json()["model_id"] == second  # the job records the resolved id
    client.put("/v1/registry/cats/aliases/staging", json={"version": 1})
    assert client.get(f"/v1/jobs/{job.json()['id']}").json()["model_id"] == second

    for missing in ("cats:3", "cats@prod", "dogs:1", "cats:0", "cats@", ":1"):
        assert client.get(f"/v1/models/{missing}").status_code == 404, missing
        refused = client.post(
            "/v1/jobs", json={"type": "evaluate", "model_id": missing, "dataset": SYNTHETIC}
        )
        assert refused.status_code == 422, missing
        assert refused.json()["detail"][0]["loc"] == ["body", "model_id"]


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("post", "/v1/registry/-bad/versions", {"model_id": "x"}, ["path", "name"]),
        ("post", "/v1/registry/a@b/versions", {"model_id": "x"}, ["path", "name"]),
        ("post", "/v1/registry/a:1/versions", {"model_id": "x"}, ["path", "name"]),
        ("post", f"/v1/registry/{'n' * 101}/versions", {"model_id": "x"}, ["path", "name"]),
        ("put", "/v1/registry/cats/aliases/1st", {"version": 1}, ["path", "alias"]),
        ("put", "/v1/registry/cats/aliases/pro@d", {"version": 1}, ["path", "alias"]),
        ("put", "/v1/registry/cats/aliases/prod", {"version": 0}, ["body", "version"]),
        ("put", "/v1/registry/cats/aliases/prod", {"version": 3}, ["body", "version"]),
        ("post", "/v1/registry/cats/versions", {"model_id": "nope"}, ["body", "model_id"]),
        ("post", "/v1/registry/cats/versions", {}, ["body", "model_id"]),
        ("patch", "/v1/registry/cats", {"tags": {"": "x"}}, ["body", "tags"]),
    ],
)
def test_bad_names_and_values_are_422_naming_the_field(client, seed, method, path, body, loc):
    model_id, _ = seed()
    register(client, "cats", model_id)
    response = client.request(method, path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][: len(loc)] == loc


def test_an_evaluation_job_records_test_time_flips_and_refuses_a_non_boolean(client, seed):
    model_id, _ = seed()
    body = {"type": "evaluate", "model_id": model_id, "dataset": SYNTHETIC}
    plain = client.post("/v1/jobs", json=body)
    flipped = client.post("/v1/jobs", json={**body, "test_time_flip": True})
    refused = client.post("/v1/jobs", json={**body, "test_time_flip": "sometimes"})

    assert plain.status_code == flipped.status_code == 202
    assert plain.json()["spec"] is None
    assert flipped.json()["spec"] == {"test_time_flip": True}  # what the worker reads
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "evaluate", "test_time_flip"]


def test_register_as_is_validated_and_recorded_on_the_train_job(client, drain_tasks):
    body = {"type": "train", "dataset": SYNTHETIC, "spec": {"epochs": 1}}
    bad = client.post("/v1/jobs", json={**body, "register_as": "no spaces"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][:3] == ["body", "train", "register_as"]
    good = client.post("/v1/jobs", json={**body, "register_as": "cats"})
    assert good.status_code == 202 and good.json()["register_as"] == "cats"


def test_other_tenants_see_neither_names_nor_references(client, app, keys, seed):
    mine, _ = seed("acme")
    theirs, _ = seed("globex")
    register(client, "cats", mine)
    client.put("/v1/registry/cats/aliases/production", json={"version": 1})
    globex = type(client)(app, headers=bearer(keys["globex"]))

    assert globex.get("/v1/registry").json()["items"] == []
    assert globex.get("/v1/registry/cats").status_code == 404
    assert globex.put("/v1/registry/cats/aliases/x", json={"version": 1}).status_code == 404
    assert globex.delete("/v1/registry/cats/aliases/production").status_code == 404
    assert globex.patch("/v1/registry/cats", json={"description": "x"}).status_code == 404
    for ref in ("cats@production", "cats:1", mine):
        assert globex.get(f"/v1/models/{ref}").status_code == 404
        assert globex.get(f"/v1/models/{ref}/download").status_code == 404
    # a tenant cannot register another tenant's model, and its own names are its own
    assert register(globex, "cats", mine).status_code == 422
    assert register(globex, "cats", theirs).json()["version"] == 1
    assert client.get("/v1/models/cats:1").json()["id"] == mine
    assert globex.get("/v1/models/cats:1").json()["id"] == theirs
