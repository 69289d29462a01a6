"""Archives past the size limits are refused before their content is decompressed."""

from __future__ import annotations

import io
import tarfile

import pytest

from tass.trainer.data import image_folder
from tass.trainer.errors import DataError


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
