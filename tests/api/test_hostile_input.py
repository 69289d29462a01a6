"""Inputs an attacker sends: each is a 4xx naming the field, never a 500, and 422 messages
never reveal server folders or whether a file exists outside the data roots."""

from __future__ import annotations

import base64
import os

import pytest

TRAIN = '{"type": "train", "dataset": {"source": "synthetic"}, "spec": {SPEC}}'


def post_raw(client, body: str):
    return client.post(
        "/v1/jobs", content=body.encode(), headers={"Content-Type": "application/json"}
    )


def detail_text(response) -> str:
    return str(response.json()["detail"])


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("field", ["learning_rate", "width", "epochs", "seed"])
def test_non_finite_numbers_are_422_naming_the_field(client, db, number, field):
    response = post_raw(client, TRAIN.replace("{SPEC}", f'{{"{field}": {number}}}'))
    assert response.status_code == 422, response.text
    assert field in detail_text(response)
    assert response.json()["detail"][0]["loc"] == ["body", "spec", field]


def test_non_finite_number_in_a_nested_field_is_422(client):
    response = post_raw(client, TRAIN.replace("{SPEC}", '{"augmentation": {"translate": NaN}}'))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "spec", "augmentation", "translate"]


def test_a_huge_integer_is_422_not_500(client):
    response = post_raw(client, TRAIN.replace("{SPEC}", '{"seed": 92233720368547758080}'))
    assert response.status_code == 422
    assert "seed" in detail_text(response)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"type": "train", "dataset": {"source": "synthetic"}, "name": "a\\ud800b"}', "name"),
        ('{"type": "train", "dataset": {"source": "synthetic"}, "tags": {"k": "\\udfff"}}', "k"),
        ('{"type": "train", "dataset": {"source": "synthetic"}, "tags": {"\\ud83d": "v"}}', "tags"),
        (
            '{"type": "evaluate", "model_id": "\\ud800", "dataset": {"source": "synthetic"}}',
            "model_id",
        ),
    ],
)
def test_lone_surrogates_are_422_naming_the_field(client, db, body, field):
    response = post_raw(client, body)
    assert response.status_code == 422, response.text
    assert field in detail_text(response)


def test_the_422_builder_survives_non_finite_input_it_echoes(client):
    """The 422 handler echoes inputs through json_safe: NaN and surrogates stay writable."""
    from tass.api.errors import json_safe

    assert json_safe({"input": float("nan"), "s": "\ud800", "l": [float("inf")]}) == {
        "input": "nan",
        "s": "\\ud800",
        "l": ["inf"],
    }


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


CRAFTED_CURSORS = [
    cursor_of("2026-01-01T00:00:00|abc"),  # naive timestamp
    cursor_of("9999-12-31T23:59:59-23:59|abc"),  # overflows when converted to UTC
    cursor_of("0001-01-01T00:00:00+23:59|abc"),  # underflows
    cursor_of("2026-01-01T00:00:00+00:00|" + "x" * 500),  # an id this service never makes
    cursor_of("2026-01-01T00:00:00+00:00|\x00"),
    "%%%",
    "",
]


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/models"])
@pytest.mark.parametrize("cursor", CRAFTED_CURSORS)
def test_crafted_cursors_are_422_naming_the_cursor(client, path, cursor):
    response = client.get(path, params={"cursor": cursor})
    if cursor == "":
        assert response.status_code == 200  # no cursor: the first page
        return
    assert response.status_code == 422, response.text
    assert "cursor" in detail_text(response)


@pytest.mark.parametrize("tag", ["a\x00b=c", "a=b\x00", "k\x1f=v"])
def test_control_characters_in_the_tag_filter_are_422_naming_tag(client, tag):
    response = client.get("/v1/jobs", params={"tag": tag})
    assert response.status_code == 422, response.text
    assert "tag" in detail_text(response)


@pytest.mark.parametrize("cursor", ["9223372036854775808", "2147483648", "-1", "1e3"])
def test_metric_cursor_out_of_range_is_422(client, cursor):
    job = client.post("/v1/jobs", json={"type": "train", "dataset": {"source": "synthetic"}})
    response = client.get(f"/v1/jobs/{job.json()['id']}/metrics", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert "cursor" in detail_text(response)


def submit_path(client, path: str):
    return client.post(
        "/v1/jobs", json={"type": "train", "dataset": {"source": "image-folder", "path": path}}
    )


@pytest.mark.parametrize("path", ["x" * 256, "images/" + "y" * 300, "/" + "z" * 4000])
def test_over_long_path_components_are_422(client, path):
    response = submit_path(client, path)
    assert response.status_code == 422, response.text
    assert "dataset.path" in detail_text(response)


def test_a_symlink_loop_under_the_data_roots_is_422(client, data_root):
    os.symlink(data_root / "loop-b", data_root / "loop-a")
    os.symlink(data_root / "loop-a", data_root / "loop-b")
    for path in ["loop-a", "loop-a/inner", str(data_root / "loop-b")]:
        response = submit_path(client, path)
        assert response.status_code == 422, response.text
        assert "dataset.path" in detail_text(response)


def test_422_names_the_path_as_given_never_the_data_root(client, data_root, tmp_path):
    (tmp_path / "exists-outside").mkdir()
    answers = {}
    for path in ["missing.tar.gz", "../exists-outside", "../missing-outside", "/etc/passwd"]:
        response = submit_path(client, path)
        assert response.status_code == 422
        text = detail_text(response)
        assert repr(path) in text
        assert str(data_root) not in text and str(tmp_path) not in text
        answers[path] = text.replace(repr(path), "PATH")
    # outside the roots an existing and a missing file get the same answer
    assert answers["../exists-outside"] == answers["../missing-outside"]


def test_every_operation_that_reads_a_body_parses_it_strictly(app, client):
    """Any route taking JSON must be on StrictJSONRoute: a lone surrogate is refused there.
    (Dataset uploads take archive bytes, never JSON: their body is no JSON document.)"""
    operations = [
        (method, path.replace("{", "").replace("}", ""))
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert ("post", "/v1/jobs") in operations
    for method, path in operations:
        response = client.request(
            method.upper(),
            path,
            content=b'{"name": "a\\ud800"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (method, path, response.text)
        assert "lone surrogate" in response.text, (method, path)


def test_a_data_root_reached_through_a_symlinked_alias_is_inside(client, data_root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(data_root)
    response = submit_path(client, str(alias / "images"))
    assert response.status_code == 202, response.text
    assert response.json()["dataset"]["path"] == "images"  # the root's own name for it
