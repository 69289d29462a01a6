"""`tass download`: the file is verified against the server's sha256, or deleted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

PAYLOAD = b"PK\x03\x04 pretend this is a keras zip " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
PRESIGNED = "https://objects.example/tass/artifacts/m-1.keras"


def file_response(body: bytes = PAYLOAD, sha: str | None = SHA, name: str = "m-1.keras"):
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if sha:
        headers |= {"X-Checksum-Sha256": sha, "ETag": f'"{sha}"'}
    return httpx.Response(200, content=body, headers=headers)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_download_verifies_and_uses_the_servers_file_name(api, run, in_tmp):
    api.route("GET", "/v1/models/m-1/download", file_response())

    result = run("download", "m-1")

    assert result.exit_code == 0, result.output
    assert (in_tmp / "m-1.keras").read_bytes() == PAYLOAD
    assert result.stdout.strip() == "m-1.keras"
    assert f"sha256 {SHA} verified" in result.stderr
    assert api.requests[0].url.params["format"] == "keras"
    assert not list(in_tmp.glob("*.part"))


def test_corrupted_download_is_deleted_with_a_non_zero_exit(api, run, in_tmp):
    api.route("GET", "/v1/models/m-1/download", file_response(body=PAYLOAD[:-1] + b"X"))

    result = run("download", "m-1", "-o", "model.keras")

    assert result.exit_code == 1
    assert "sha256 mismatch" in result.stderr and "deleted" in result.stderr
    assert list(in_tmp.iterdir()) == []  # neither the file nor a .part is left
    assert "Traceback" not in result.output


def test_redirect_is_followed_and_the_first_responses_checksum_kept(api, run, in_tmp):
    redirect = httpx.Response(
        307,
        headers={
            "Location": PRESIGNED,
            "X-Checksum-Sha256": SHA,
            "Content-Disposition": 'attachment; filename="m-1-savedmodel.zip"',
        },
    )
    api.route("GET", "/v1/models/m-1/download", redirect)
    # the object store's ETag is an MD5, not the sha256: it must not be taken for one
    store = httpx.Response(200, content=PAYLOAD, headers={"ETag": '"0123456789abcdef"'})
    api.route("GET", PRESIGNED, store)

    result = run("download", "m-1", "--format", "savedmodel")

    assert result.exit_code == 0, result.output
    assert (in_tmp / "m-1-savedmodel.zip").read_bytes() == PAYLOAD
    assert [r.url.host for r in api.requests] == ["tass.test", "objects.example"]


def test_redirected_corrupt_file_fails_against_the_first_checksum(api, run, in_tmp):
    redirect = httpx.Response(307, headers={"Location": PRESIGNED, "X-Checksum-Sha256": SHA})
    api.route("GET", "/v1/models/m-1/download", redirect)
    api.route("GET", PRESIGNED, httpx.Response(200, content=b"truncated"))

    result = run("download", "m-1", "-o", "out.keras")

    assert result.exit_code == 1
    assert not (in_tmp / "out.keras").exists()


def test_without_a_checksum_header_the_model_record_is_used(api, run, in_tmp):
    api.route("GET", "/v1/models/m-1/download", file_response(sha=None))
    record = {"id": "m-1", "artifacts": [{"format": "keras", "size": 1, "sha256": "0" * 64}]}
    api.route("GET", "/v1/models/m-1", httpx.Response(200, json=record))

    result = run("download", "m-1")

    assert result.exit_code == 1  # the record's sha256 does not match these bytes
    assert "sha256 mismatch" in result.stderr
    assert not (in_tmp / "m-1.keras").exists()


def test_an_existing_file_is_kept_unless_forced(api, run, in_tmp):
    api.route("GET", "/v1/models/m-1/download", file_response())
    (in_tmp / "m-1.keras").write_bytes(b"mine")

    result = run("download", "m-1")
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert (in_tmp / "m-1.keras").read_bytes() == b"mine"

    assert run("download", "m-1", "--force").exit_code == 0
    assert (in_tmp / "m-1.keras").read_bytes() == PAYLOAD


def test_output_folder_and_unsafe_server_file_name(api, run, in_tmp):
    api.route("GET", "/v1/models/m-1/download", file_response(name="../../etc/evil.keras"))
    (in_tmp / "models").mkdir()

    result = run("download", "m-1", "-o", "models")

    assert result.exit_code == 0, result.output
    assert (in_tmp / "models" / "evil.keras").read_bytes() == PAYLOAD


def test_unknown_model(api, run):
    api.route(
        "GET", "/v1/models/zz/download", httpx.Response(404, json={"detail": "no model 'zz'"})
    )

    result = run("download", "zz")

    assert result.exit_code == 1
    assert "no model 'zz'" in result.stderr


def test_models_table(api, run):
    model = {
        "id": "m-1",
        "job_id": "job-1",
        "name": "pets",
        "created_at": "2025-01-01T10:00:00+00:00",
        "metrics": {"val_accuracy": 0.93},
        "class_names": ["cat", "dog"],
        "artifacts": [
            {"format": "keras", "size": 12_300_000, "sha256": SHA},
            {"format": "savedmodel", "size": 40_000_000, "sha256": SHA},
        ],
    }
    api.route(
        "GET", "/v1/models", httpx.Response(200, json={"items": [model], "next_cursor": None})
    )

    result = run("models")
    assert result.exit_code == 0
    for text in (
        "m-1",
        "pets",
        "job-1",
        "val_accuracy=0.93",
        "keras 12.3 MB",
        "savedmodel 40.0 MB",
    ):
        assert text in result.stdout

    assert json.loads(run("models", "--json").stdout)["items"][0]["id"] == "m-1"
