"""`tass registry list|show|register|alias` and references in `tass download`/`submit`."""

from __future__ import annotations

import json

import httpx

CATS = {
    "name": "cats",
    "description": "cat detector",
    "tags": {"team": "vision"},
    "latest_version": 2,
    "aliases": {"production": 2, "previous": 1},
    "created_at": "2026-01-01T10:00:00Z",
    "updated_at": "2026-01-02T10:00:00Z",
}
VERSIONS = [
    {
        "version": number,
        "model_id": f"model-{number}",
        "created_at": "2026-01-01T10:00:00Z",
        "metrics": {"val_accuracy": accuracy},
        "job_id": f"job-{number}",
        "dataset": {"source": "cifar10"},
    }
    for number, accuracy in [(1, 0.71), (2, 0.83)]
]


def test_list_prints_names_latest_versions_and_aliases(api, run):
    api.route(
        "GET", "/v1/registry", httpx.Response(200, json={"items": [CATS], "next_cursor": "cats"})
    )

    result = run("registry", "list", "--limit", "1")

    assert result.exit_code == 0, result.output
    assert "cats" in result.stdout and "previous=1, production=2" in result.stdout
    assert "cat detector" in result.stdout
    assert "--cursor cats" in result.stderr
    assert api.requests[0].url.params["limit"] == "1"


def test_show_prints_every_version_with_its_aliases_and_lineage(api, run):
    api.route("GET", "/v1/registry/cats", httpx.Response(200, json={**CATS, "versions": VERSIONS}))

    result = run("registry", "show", "cats")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any("model-2" in line and "production" in line and "job-2" in line for line in lines)
    assert any("model-1" in line and "previous" in line and "0.71" in line for line in lines)
    assert "tags: team=vision" in result.stdout


def test_register_posts_the_reference_and_sets_description_and_tags(api, run):
    api.route(
        "POST",
        "/v1/registry/cats/versions",
        httpx.Response(
            201, json={"name": "cats", "version": 3, "model_id": "m-9", "created": True}
        ),
    )
    api.route("PATCH", "/v1/registry/cats", httpx.Response(200, json={**CATS, "versions": []}))

    result = run(
        "registry", "register", "cats", "dogs@production", "--description", "d", "--tag", "a=b"
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "cats version 3: model m-9"
    assert api.bodies("POST", "/v1/registry/cats/versions") == [{"model_id": "dogs@production"}]
    assert api.bodies("PATCH", "/v1/registry/cats") == [{"description": "d", "tags": {"a": "b"}}]


def test_alias_moves_and_deletes(api, run):
    api.route(
        "PUT",
        "/v1/registry/cats/aliases/production",
        httpx.Response(
            200, json={"name": "cats", "alias": "production", "version": 1, "model_id": "model-1"}
        ),
    )
    api.route("DELETE", "/v1/registry/cats/aliases/production", httpx.Response(204))

    moved = run("registry", "alias", "cats", "production", "1")
    removed = run("registry", "alias", "cats", "production", "--delete")
    neither = run("registry", "alias", "cats", "production")

    assert moved.exit_code == 0 and "version 1 (model model-1)" in moved.stdout
    assert api.bodies("PUT", "/v1/registry/cats/aliases/production") == [{"version": 1}]
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert neither.exit_code != 0 and "VERSION or --delete" in neither.stderr


def test_server_errors_are_printed_with_a_nonzero_exit(api, run):
    api.route(
        "GET",
        "/v1/registry/cats",
        httpx.Response(404, json={"detail": "no registered model 'cats'"}),
    )

    result = run("registry", "show", "cats")

    assert result.exit_code != 0
    assert "no registered model 'cats'" in result.stderr


def test_submit_train_register_as_is_sent_in_the_body(api, run):
    job = {"id": "job-1", "status": "queued"}
    api.route("POST", "/v1/jobs", httpx.Response(202, json=job))

    result = run("submit", "train", "--data", "synthetic", "--register-as", "cats", "--json")

    assert result.exit_code == 0, result.output
    assert api.bodies("POST", "/v1/jobs")[0]["register_as"] == "cats"
    assert json.loads(result.stdout)["id"] == "job-1"
