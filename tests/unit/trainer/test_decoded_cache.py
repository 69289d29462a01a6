"""The decoded-pixel cache: the second load of an archive reads the pixels the first one
decoded (the same arrays, no decoding), a changed archive is decoded again, a damaged entry is
decoded again instead of failing the job, the folder keeps a bounded number of entries, and
the data-root confinement still holds for a cached archive."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tass.contract.spec import DatasetSpec
from tass.trainer.data import image_folder
from tass.trainer.data.decoded_cache import DecodedCache
from tass.trainer.data.loader import load_dataset
from tass.trainer.errors import DataError
from tests.support.archives import class_files, png_bytes, tar_gz


@pytest.fixture
def archive(tmp_path):
    path = tmp_path / "data" / "pets.tar.gz"
    path.parent.mkdir()
    path.write_bytes(tar_gz(class_files()))
    return path


def load(path, cache_dir, **kwargs):
    spec = DatasetSpec(source="image-folder", path=str(path))
    return load_dataset(spec, decoded_cache=cache_dir, **kwargs)


def count_decodes(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = image_folder._load_archive

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(image_folder, "_load_archive", counted)
    return calls


def test_the_second_load_reads_the_first_loads_pixels_without_decoding(
    archive, tmp_path, monkeypatch
):
    decodes = count_decodes(monkeypatch)
    first = load(archive, tmp_path / "cache")
    second = load(archive, tmp_path / "cache")
    assert len(decodes) == 1
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert second.class_names == first.class_names == ["cat", "dog"]
    assert second.source_sizes == first.source_sizes == {"32x32": 12}
    assert second.x.dtype == np.uint8


def test_a_changed_archive_is_decoded_again(archive, tmp_path, monkeypatch):
    decodes = count_decodes(monkeypatch)
    before = load(archive, tmp_path / "cache")
    files = class_files()
    files["train/cat/0000.png"] = png_bytes(0, 0, 0)  # one black cat
    archive.write_bytes(tar_gz(files))
    os.utime(archive, ns=(1, 1))  # a different modification time, whatever the clock did
    after = load(archive, tmp_path / "cache")
    assert len(decodes) == 2
    assert not np.array_equal(before.x, after.x)
    assert after.x.min() == 0


def test_a_damaged_entry_is_decoded_again_instead_of_failing(archive, tmp_path, monkeypatch):
    load(archive, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("*.npz")
    entry.write_bytes(b"not an npz")
    decodes = count_decodes(monkeypatch)
    data = load(archive, tmp_path / "cache")
    assert len(decodes) == 1 and len(data) == 12
    assert load(archive, tmp_path / "cache").x.shape == data.x.shape  # stored again, read back
    assert len(decodes) == 1


def test_the_cache_keeps_a_bounded_number_of_entries(archive, tmp_path):
    cache = DecodedCache(tmp_path / "cache", keep=2)
    data = load(archive, None)
    for split in ("a", "b", "c"):
        cache.put(cache.key(archive, split, 32), data)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert cache.get(cache.key(archive, "c", 32)) is not None
    assert cache.get(cache.key(archive, "a", 32)) is None


def test_an_archive_outside_the_data_roots_is_refused_even_when_cached(archive, tmp_path):
    load(archive, tmp_path / "cache")
    elsewhere = tmp_path / "roots"
    elsewhere.mkdir()
    with pytest.raises(DataError, match="outside"):
        load(archive, tmp_path / "cache", confine_to=[elsewhere.resolve()])
