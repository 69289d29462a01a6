"""Control characters (NUL above all: PostgreSQL stores it in neither text nor jsonb) are
refused at the edge on both databases: a 422 naming the field for a body or query value, a 404
for a path id; never a 500, and the next request on the same connection pool still works."""

from __future__ import annotations

import pytest

SYNTHETIC = {"source": "synthetic"}
SWEEP = {
    "dataset": SYNTHETIC,
    "parameters": {"learning_rate": {"values": [0.1, 0.2]}},
    "max_trials": 2,
}

BODIES = [
    ("/v1/jobs", {"type": "train", "dataset": SYNTHETIC, "name": "a\x00b"}, ["name"]),
    ("/v1/jobs", {"type": "train", "dataset": SYNTHETIC, "name": "a\x1bb"}, ["name"]),
    ("/v1/jobs", {"type": "train", "dataset": SYNTHETIC, "tags": {"k": "a\x00"}}, ["tags", "k"]),
    (
        "/v1/jobs",
        {"type": "evaluate", "model_id": "a\x00b", "dataset": SYNTHETIC},
        ["model_id"],
    ),
    (
        "/v1/jobs",
        {"type": "evaluate", "model_id": "m\x7f", "dataset": SYNTHETIC},
        ["model_id"],
    ),
    (
        "/v1/jobs",
        {"type": "train", "dataset": {"source": "dataset", "id": "a\x00b"}},
        ["dataset", "id"],
    ),
    (
        "/v1/jobs",
        {"type": "train", "dataset": {"source": "image-folder", "path": "/d\x00/x"}},
        ["dataset", "path"],
    ),
    ("/v1/sweeps", {**SWEEP, "name": "a\x00b"}, ["name"]),
    ("/v1/sweeps", {**SWEEP, "dataset": {"source": "dataset", "id": "\x00"}}, ["dataset", "id"]),
    ("/v1/registry/pets/versions", {"model_id": "a\x00b"}, ["model_id"]),
    ("/v1/registry/pets/versions", {"model_id": "a\nb"}, ["model_id"]),
    ("/v1/webhooks", {"url": "https://example.com/\x00", "events": ["job.failed"]}, ["url"]),
]


@pytest.mark.parametrize(("path", "body", "loc"), BODIES)
def test_a_control_character_in_a_body_is_422_naming_the_field(client, path, body, loc):
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    locs = [error["loc"][-len(loc) :] for error in response.json()["detail"]]
    assert loc in locs, response.text
    assert client.get("/v1/jobs").status_code == 200  # the connection was not poisoned


def test_a_nul_in_a_registry_description_is_422(client):
    response = client.patch("/v1/registry/pets", json={"description": "a\x00b"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == "description"


def test_newlines_stay_allowed_in_free_text(client):
    """A description is prose: tabs and newlines are not refused (only NUL is, anywhere)."""
    response = client.patch("/v1/registry/pets", json={"description": "line 1\n\tline 2"})
    assert response.status_code != 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/a%00b",
        "/v1/jobs/a%00b/metrics",
        "/v1/jobs/a%00b/artifacts",
        "/v1/jobs/a%00b/events",
        "/v1/models/a%00b",
        "/v1/models/a%00b/download",
        "/v1/datasets/a%00b",
        "/v1/webhooks/a%00b",
        "/v1/webhooks/a%00b/deliveries",
        "/v1/sweeps/a%00b",
        "/v1/registry/a%00b",
        "/v1/jobs/a%01b",
        "/v1/jobs/a%7Fb",
    ],
)
def test_a_control_character_in_a_path_id_is_404(client, path):
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert client.get("/v1/jobs").status_code == 200


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/jobs/a%00b/cancel", "/v1/sweeps/a%00/cancel"])
def test_writes_to_a_control_character_path_id_are_404(client, method, path):
    if method == "DELETE":
        path = path.removesuffix("/cancel")
    response = client.request(method, path)
    assert response.status_code in (404, 405), response.text
    if response.status_code == 405:  # no such route for the method: not a database question
        return
    assert client.get("/v1/jobs").status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/jobs?sweep=a%00", "sweep"),
        ("/v1/jobs?cursor=a%00", "cursor"),
        ("/v1/models?cursor=%00", "cursor"),
        ("/v1/sweeps?cursor=%1f", "cursor"),
    ],
)
def test_a_control_character_in_a_query_value_is_422_naming_it(client, path, param):
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", param]
    assert client.get("/v1/jobs").status_code == 200


def test_a_control_character_in_a_dataset_uploads_name_is_422(client):
    response = client.post(
        "/v1/datasets?name=pets%00", content=b"x", headers={"Content-Type": "application/gzip"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "name"]
