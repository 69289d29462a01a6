"""The artifact layout: keys and file names, and download-and-verify (one error type, and
nothing left behind when the bytes are not the recorded ones)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tass.contract.artifacts import (
    ATTEMPT_KEY,
    ArtifactError,
    checkpoint_key,
    checkpoint_kind,
    download_name,
    key_file_name,
    key_folder,
    model_format,
    model_key,
    model_kind,
    save_verified,
)
from tass.core.objectstore import ObjectStore

PAYLOAD = b"the stored model bytes " * 1000
SHA = hashlib.sha256(PAYLOAD).hexdigest()
JOB = "0123456789abcdef0123456789abcdef"


def chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_matching_bytes_are_moved_into_place(tmp_path: Path) -> None:
    saved = save_verified(chunks(PAYLOAD), tmp_path / "model.keras", SHA)

    assert (tmp_path / "model.keras").read_bytes() == PAYLOAD
    assert (saved.size, saved.sha256, saved.checked) == (len(PAYLOAD), SHA, True)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_a_wrong_sha256_raises_and_leaves_no_file_behind(tmp_path: Path) -> None:
    wrong = hashlib.sha256(b"other bytes").hexdigest()

    with pytest.raises(ArtifactError, match="sha256 mismatch") as raised:
        save_verified(chunks(PAYLOAD), tmp_path / "sub" / "model.keras", wrong, what="m-1")

    assert "m-1" in str(raised.value) and wrong in str(raised.value)
    assert list((tmp_path / "sub").iterdir()) == []  # neither the file nor its .part


def test_a_short_download_raises_and_leaves_no_file_behind(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=f"ended after {len(PAYLOAD) - 1} of {len(PAYLOAD)}"):
        save_verified(chunks(PAYLOAD[:-1]), tmp_path / "m.keras", None, size=len(PAYLOAD))
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_stream_propagates_and_leaves_no_part_file(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield PAYLOAD[:100]
        raise ConnectionError("connection reset")

    with pytest.raises(ConnectionError):
        save_verified(broken(), tmp_path / "m.keras", SHA)
    assert list(tmp_path.iterdir()) == []


def test_the_object_store_refuses_altered_and_missing_objects(tmp_path: Path) -> None:
    store = ObjectStore((tmp_path / "store").as_uri())
    stored = store.put_bytes(model_key(JOB, 1, "model.keras"), PAYLOAD)
    dest = tmp_path / "out" / "model.keras"

    assert store.download(stored.key, dest, stored.sha256).path.read_bytes() == PAYLOAD
    dest.unlink()
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        store.download(stored.key, dest, hashlib.sha256(b"x").hexdigest())
    with pytest.raises(ArtifactError, match="no such stored object"):
        store.download(model_key(JOB, 2, "model.keras"), dest, None)
    assert list((tmp_path / "out").iterdir()) == []


def test_keys_are_per_attempt_and_recognised_by_the_collector() -> None:
    checkpoint = checkpoint_key(JOB, 2, 3, "state.json")
    model = model_key(JOB, 2, "savedmodel.zip")

    assert checkpoint == f"jobs/{JOB}/attempt-2/checkpoints/epoch-0003/state.json"
    assert model == f"models/{JOB}/attempt-2/savedmodel.zip"
    for key in (checkpoint, model):
        match = ATTEMPT_KEY.match(key)
        assert match is not None and (match["job"], match["attempt"]) == (JOB, "2")
    assert key_folder(checkpoint) == f"jobs/{JOB}/attempt-2/checkpoints/epoch-0003/"
    assert key_file_name(checkpoint) == "state.json"


def test_artifact_kinds_and_download_names() -> None:
    assert [checkpoint_kind(n) for n in ("model.keras", "state.json", "x.bin")] == [
        "checkpoint",
        "checkpoint-state",
        "checkpoint-file",
    ]
    assert model_format(model_kind("savedmodel")) == "savedmodel"
    assert model_format("checkpoint") is None
    assert download_name("m-1", "keras") == "m-1.keras"
    assert download_name("m-1", "savedmodel") == "m-1-savedmodel.zip"
