"""What validation reports about an uploaded archive: classes, counts and sizes of a good one
(.tar.gz and .zip), and the reason for a bad one naming the member by its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tass.trainer.data.describe import describe_archive
from tass.trainer.data.image_folder import load_image_folder
from tass.trainer.errors import DataError
from tests.support.archives import class_files, png_bytes, tar_gz, write, zip_bytes

PACKERS = {"archive.tar.gz": tar_gz, "archive.zip": zip_bytes}


@pytest.mark.parametrize("name", PACKERS)
def test_a_good_archive_is_described(tmp_path: Path, name: str) -> None:
    files = class_files(per_class=3)
    files["test/cat/0000.png"] = png_bytes(200, 0, 0)
    path = write(tmp_path / name, PACKERS[name](files))
    summary = describe_archive(path, shown="pets")
    assert summary == {
        "num_examples": 7,
        "classes": ["cat", "dog"],
        "class_counts": {"train": {"cat": 3, "dog": 3}, "test": {"cat": 1, "dog": 0}},
        "image_sizes": {"32x32": 7},
    }
    assert load_image_folder(str(path), "train").x.shape == (6, 32, 32, 3)


def test_images_of_other_sizes_are_counted_by_their_own_size(tmp_path: Path) -> None:
    files = class_files(per_class=2)
    files["train/cat/big.png"] = png_bytes(0, 0, 250, size=96)
    summary = describe_archive(write(tmp_path / "a.tar.gz", tar_gz(files)), shown="pets")
    assert summary["image_sizes"] == {"32x32": 4, "96x96": 1}
    loaded = load_image_folder(str(tmp_path / "a.tar.gz"), "train")
    assert loaded.x.shape == (5, 32, 32, 3)
    assert loaded.x[loaded.y == 0][:, :, :, 2].max() == 250  # the big blue one, averaged down


@pytest.mark.parametrize("name", PACKERS)
def test_a_non_image_is_named_by_its_path_in_the_archive(tmp_path: Path, name: str) -> None:
    files = {**class_files(per_class=2), "train/dog/notes.png": b"these are not pixels" * 4}
    path = write(tmp_path / name, PACKERS[name](files))
    with pytest.raises(DataError) as caught:
        describe_archive(path, shown="pets")
    message = str(caught.value)
    assert message.startswith("pets:train/dog/notes.png: not a decodable image")
    assert str(tmp_path) not in message


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("archive.tar.gz", b"\x1f\x8b" + b"garbage" * 50, "not a readable .tar.gz archive"),
        ("archive.zip", b"PK" + b"garbage" * 50, "not a readable .zip archive"),
        ("archive.tar.gz", tar_gz(class_files())[:200], "not a readable .tar.gz archive"),
        ("archive.tar.gz", tar_gz({"flat.png": png_bytes(1, 2, 3)}), "no images in class"),
        ("archive.zip", zip_bytes({"readme.txt": b"hi"}), "no images in class"),
    ],
)
def test_corrupt_archives_and_missing_class_folders_fail(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = write(tmp_path / name, data)
    with pytest.raises(DataError, match=reason) as caught:
        describe_archive(path, shown="pets")
    assert str(caught.value).startswith("pets: ")
