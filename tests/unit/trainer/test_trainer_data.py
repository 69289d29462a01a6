"""Each loader reads a tiny generated dataset in its real on-disk format; bad data is named."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from trainer_testdata import (
    CLASSES,
    add_tar_member,
    class_image,
    encode_png,
    tar_tree,
    write_cifar_batches,
    write_image_tree,
)

from tass.contract.spec import DatasetSpec
from tass.trainer.data import Dataset, load_dataset, stratified_split
from tass.trainer.errors import DataError


def spec(source: str, path: Path | None = None, **kw: object) -> DatasetSpec:
    return DatasetSpec(source=source, path=str(path) if path else None, **kw)


def test_cifar10_python_folder_reads_train_and_test_batches(tmp_path: Path) -> None:
    written = write_cifar_batches(tmp_path / "cifar-10-batches-py")
    train = load_dataset(spec("cifar10-python", tmp_path / "cifar-10-batches-py"))
    assert train.x.shape == (30, 32, 32, 3) and train.x.dtype == np.uint8
    data, labels = written["data_batch_1"]
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values, each row-major.
    np.testing.assert_array_equal(train.x[0, :, :, 1], data[0, 1024:2048].reshape(32, 32))
    assert train.y[:6].tolist() == labels
    assert train.class_names[:2] == ["a", "b"]
    test = load_dataset(spec("cifar10-python", tmp_path, split="test"))  # parent folder works too
    np.testing.assert_array_equal(test.y, written["test_batch"][1])


def test_cifar10_python_missing_or_corrupt_batch_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "batches"
    write_cifar_batches(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset(spec("cifar10-python", folder))
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"data_batch_3.*not a readable"):
        load_dataset(spec("cifar10-python", folder))


def test_cifar10_python_refuses_pickles_that_would_run_code(tmp_path: Path) -> None:
    folder = tmp_path / "batches"
    write_cifar_batches(folder)
    (folder / "test_batch").write_bytes(pickle.dumps(shutil.rmtree))  # a callable global
    with pytest.raises(DataError, match="refusing"):
        load_dataset(spec("cifar10-python", folder, split="test"))


def test_image_folder_reads_train_and_test_splits(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tree")
    train = load_dataset(spec("image-folder", root))
    test = load_dataset(spec("image-folder", root, split="test"))
    assert train.class_names == sorted(CLASSES) and len(train) == 9 and len(test) == 6
    for data in (train, test):
        # Each class has its own colour channel; labels follow the sorted class names.
        assert (data.x.mean(axis=(1, 2)).argmax(axis=1) == data.y % 3).all()


def test_image_folder_with_classes_at_top_level(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tree", with_test=False)
    flat = root / "train"
    data = load_dataset(spec("image-folder", flat))
    assert data.class_names == sorted(CLASSES) and len(data) == 9
    with pytest.raises(DataError, match="no test/"):
        load_dataset(spec("image-folder", flat, split="test"))


def test_image_folder_tar_gz_matches_the_folder(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tree")
    archive = tar_tree(root, tmp_path / "images.tar.gz", arcname="cifar/")
    from_folder = load_dataset(spec("image-folder", root))
    from_tar = load_dataset(spec("image-folder", archive))
    np.testing.assert_array_equal(from_tar.x, from_folder.x)
    np.testing.assert_array_equal(from_tar.y, from_folder.y)
    assert len(load_dataset(spec("image-folder", archive, split="test"))) == 6
    assert not any(p.name == "cifar" for p in tmp_path.iterdir())  # nothing was extracted


@pytest.mark.parametrize("bad_name", ["/etc/train/cat/0.png", "train/../../cat/0.png"])
def test_image_folder_tar_refuses_unsafe_member_paths(tmp_path: Path, bad_name: str) -> None:
    archive = tar_tree(write_image_tree(tmp_path / "tree"), tmp_path / "images.tar.gz")
    add_tar_member(archive, bad_name, encode_png(class_image(0, 0)))
    with pytest.raises(DataError, match="unsafe path"):
        load_dataset(spec("image-folder", archive))


def test_image_folder_corrupt_image_is_named_and_another_size_resized(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tree")
    bad = root / "train" / "dog" / "0001.jpg"
    bad.write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(DataError, match=r"0001\.jpg.*not a decodable image"):
        load_dataset(spec("image-folder", root))
    import tensorflow as tf

    bad.write_bytes(tf.io.encode_jpeg(np.zeros((64, 48, 3), np.uint8)).numpy())
    resized = load_dataset(spec("image-folder", root))  # another size is read at 32x32
    assert resized.x.shape[1:] == (32, 32, 3)


def test_missing_paths_and_archives_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        load_dataset(spec("image-folder", tmp_path / "nowhere"))
    with pytest.raises(DataError, match="nowhere"):
        load_dataset(spec("cifar10-python", tmp_path / "nowhere"))
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(DataError, match=r"broken\.tar\.gz"):
        load_dataset(spec("image-folder", broken))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_dataset(spec("image-folder", tmp_path / "empty"))


def test_cifar10_offline_error_names_the_other_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline() -> None:
        raise OSError("URL fetch failure: no route to host")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError) as info:
        load_dataset(spec("cifar10"))
    for source in ("cifar10-python", "image-folder", "synthetic"):
        assert source in str(info.value)


def test_synthetic_is_seeded_and_shares_classes_across_splits() -> None:
    a = load_dataset(spec("synthetic", num_examples=50, num_classes=5))
    b = load_dataset(spec("synthetic", num_examples=50, num_classes=5))
    test = load_dataset(spec("synthetic", num_examples=50, num_classes=5, split="test"))
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, test.x)
    assert a.x.shape == (50, 32, 32, 3) and set(a.y.tolist()) == set(range(5))
    assert a.class_names == test.class_names


def test_limit_takes_a_seeded_shuffled_subset() -> None:
    full = load_dataset(spec("synthetic", num_examples=100))
    limited = load_dataset(spec("synthetic", num_examples=100, limit=30))
    again = load_dataset(spec("synthetic", num_examples=100, limit=30))
    assert len(limited) == 30
    np.testing.assert_array_equal(limited.y, again.y)
    assert (
        limited.y.tolist() != full.y[:30].tolist() or limited.x.tobytes() != full.x[:30].tobytes()
    )


def test_stratified_split_keeps_class_shares_and_loses_nothing() -> None:
    y = np.repeat(np.arange(4), 25)  # sorted by class, like the real archive
    x = np.arange(100, dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    data = Dataset(x, y, ["a", "b", "c", "d"])
    train, val = stratified_split(data, 0.2, seed=3)
    assert np.bincount(val.y).tolist() == [5, 5, 5, 5]
    assert sorted(np.concatenate([train.x[:, 0, 0, 0], val.x[:, 0, 0, 0]]).tolist()) == list(
        range(100)
    )
    assert val.y.tolist() != sorted(val.y.tolist())  # shuffled, not sorted by class
    again_train, _ = stratified_split(data, 0.2, seed=3)
    np.testing.assert_array_equal(train.x, again_train.x)


def test_dataset_rejects_wrong_shapes() -> None:
    with pytest.raises(DataError, match="uint8"):
        Dataset(np.zeros((2, 28, 28, 2), np.uint8), np.zeros(2, int), ["a"])  # 2 channels
    with pytest.raises(DataError, match="uint8"):
        Dataset(np.zeros((2, 28, 28, 3), np.float32), np.zeros(2, int), ["a"])
    assert Dataset(np.zeros((2, 28, 28, 1), np.uint8), np.zeros(2, int), ["a"]).image_shape == (
        28,
        28,
        1,
    )  # any size, grayscale or RGB: training resizes to the spec's
    with pytest.raises(DataError, match="labels"):
        Dataset(np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 5]), ["a", "b"])
