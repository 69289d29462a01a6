"""The model registry and downloads: digest headers, ranges, conditional requests."""

from __future__ import annotations

import hashlib

import pytest

from tass.core.objectstore import ObjectStore
from tests.support.seed import seed_trained_model

PAYLOAD = bytes(range(256)) * 40


@pytest.fixture
def stored_model(client, db, settings) -> str:
    store = ObjectStore(settings.resolved_artifact_url)
    with db() as session:
        model = seed_trained_model(
            session,
            store,
            PAYLOAD,
            tenant="acme",
            name="m",
            metrics={"val_accuracy": 0.9},
            class_names=["a"],
        )
        session.commit()
        return model.id


def test_models_are_listed_with_their_files(client, stored_model):
    items = client.get("/v1/models").json()["items"]
    assert [m["id"] for m in items] == [stored_model]
    assert items[0]["artifacts"] == [
        {"format": "keras", "size": len(PAYLOAD), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}
    ]
    assert client.get(f"/v1/models/{stored_model}").json()["metrics"] == {"val_accuracy": 0.9}
    assert client.get("/v1/models/nope").status_code == 404


def test_download_streams_the_file_with_length_digest_and_etag(client, stored_model):
    response = client.get(f"/v1/models/{stored_model}/download")
    digest = hashlib.sha256(PAYLOAD).hexdigest()

    assert response.status_code == 200
    assert response.content == PAYLOAD
    assert response.headers["content-length"] == str(len(PAYLOAD))
    assert response.headers["x-checksum-sha256"] == digest
    assert response.headers["etag"] == f'"{digest}"'
    assert f"{stored_model}.keras" in response.headers["content-disposition"]
    cached = client.get(
        f"/v1/models/{stored_model}/download", headers={"If-None-Match": f'"{digest}"'}
    )
    assert cached.status_code == 304 and cached.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-99", 0, 100),
        ("bytes=5000-", 5000, len(PAYLOAD)),
        ("bytes=-10", len(PAYLOAD) - 10, len(PAYLOAD)),
    ],
)
def test_download_honours_ranges(client, stored_model, header, start, end):
    response = client.get(f"/v1/models/{stored_model}/download", headers={"Range": header})
    assert response.status_code == 206
    assert response.content == PAYLOAD[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(PAYLOAD)}"


def test_unsatisfiable_range_is_416(client, stored_model):
    response = client.get(
        f"/v1/models/{stored_model}/download", headers={"Range": f"bytes={len(PAYLOAD) + 5}-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(PAYLOAD)}"


def test_missing_format_and_bad_format(client, stored_model):
    assert client.get(f"/v1/models/{stored_model}/download?format=savedmodel").status_code == 404
    assert client.get(f"/v1/models/{stored_model}/download?format=onnx").status_code == 422


@pytest.mark.parametrize("header", ["bytes=-0", "bytes=-00"])
def test_an_empty_suffix_range_is_416(client, stored_model, header):
    response = client.get(f"/v1/models/{stored_model}/download", headers={"Range": header})
    assert response.status_code == 416
    assert response.content == b""


def test_downloads_revalidate_with_their_etag_and_stay_out_of_shared_caches(client, stored_model):
    response = client.get(f"/v1/models/{stored_model}/download")
    assert response.headers["cache-control"] == "private, no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    cached = client.get(f"/v1/models/{stored_model}/download", headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.headers["cache-control"] == "private, no-cache"
