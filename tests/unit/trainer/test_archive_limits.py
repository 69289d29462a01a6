"""Archives past the size limits are refused before their content is decompressed."""

from __future__ import annotations

import io
import struct
import tarfile
import time
import tracemalloc

import pytest

from tass.trainer.data import image_folder
from tass.trainer.errors import DataError
from tests.support.archives import class_files, zip_bytes


def write_tar(path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_an_archive_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_ARCHIVE_BYTES", 50_000)
    archive = tmp_path / "bomb.tar.gz"
    write_tar(archive, {f"train/cat/{i}.bin": bytes(20_000) for i in range(4)})
    with pytest.raises(DataError, match="archive too large"):
        image_folder.load_image_folder(str(archive), "train")


def test_an_archive_with_too_many_members_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_ARCHIVE_MEMBERS", 10)
    archive = tmp_path / "many.tar.gz"
    write_tar(archive, {f"train/cat/{i}.txt": b"x" for i in range(11)})
    with pytest.raises(DataError, match="archive too large"):
        image_folder.load_image_folder(str(archive), "train")


def test_an_oversized_image_member_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_IMAGE_BYTES", 1000)
    archive = tmp_path / "huge-image.tar.gz"
    write_tar(archive, {"train/cat/0.png": bytes(5000)})
    with pytest.raises(DataError, match=r"'train/cat/0\.png' is over the 1000-byte image limit"):
        image_folder.load_image_folder(str(archive), "train")


def zip_directory_only(entries: int, claimed: int) -> bytes:
    """A zip's central directory of `entries` empty files, its end record claiming `claimed`
    (zipfile builds a ZipInfo for every entry the directory's byte size holds)."""
    directory = b"".join(
        struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0
        )
        + f"train/c/{i:07d}".encode()
        for i in range(entries)
    )
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, claimed, claimed, len(directory), 0, 0)
    return directory + end


@pytest.mark.parametrize("claimed", [65_000, 1], ids=["end-record-count", "lying-end-record"])
def test_a_zip_with_too_many_entries_is_refused_before_its_directory_is_built(
    tmp_path, monkeypatch, claimed
):
    monkeypatch.setattr(image_folder, "MAX_ARCHIVE_MEMBERS", 1000)
    archive = tmp_path / "many.zip"
    archive.write_bytes(zip_directory_only(200_000, claimed))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="archive too large"):
            image_folder.load_image_folder(str(archive), "train")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # zipfile's directory of 200,000 entries takes ~100 MB; the count alone takes next to none
    assert peak < 8 * 1024**2


def test_reading_past_the_deadline_is_refused(tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(zip_bytes(class_files(per_class=2)))
    assert len(image_folder.load_image_folder(str(archive), "train", deadline=None)) == 4
    with pytest.raises(DataError, match="took longer than the time allowed"):
        image_folder.load_image_folder(str(archive), "train", deadline=time.monotonic() - 1)
