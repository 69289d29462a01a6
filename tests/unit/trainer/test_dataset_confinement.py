"""Dataset confinement reaches every file, and every file is checked before it is read whole:
links out of the data roots, oversized CIFAR batches, images of the wrong size and archive
members that are not images are refused with a message naming the file."""

from __future__ import annotations

import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from trainer_testdata import class_image, encode_jpeg, encode_png, write_cifar_batches

from tass.trainer.data import cifar, image_folder
from tass.trainer.data.image_header import read_image_header
from tass.trainer.errors import DataError


def image_tree(root: Path) -> Path:
    for label, name in enumerate(["cat", "dog"]):
        (root / "train" / name).mkdir(parents=True)
        for i in range(2):
            (root / "train" / name / f"{i}.png").write_bytes(encode_png(class_image(label, i)))
    return root


def test_a_symlinked_image_leading_out_of_the_data_roots_is_refused(tmp_path):
    roots = [(tmp_path / "roots").resolve()]
    tree = image_tree(roots[0] / "tree")
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(encode_png(class_image(0, 9)))
    (tree / "train" / "cat" / "link.png").symlink_to(secret)

    with pytest.raises(DataError, match=r"link\.png: a symlink that leads outside the data roots"):
        image_folder.load_image_folder(str(tree), "train", confine_to=roots)
    with pytest.raises(DataError) as refused:
        image_folder.load_image_folder(str(tree), "train", confine_to=roots)
    assert "outside/secret" not in str(refused.value)  # the target is never revealed


def test_a_symlink_that_stays_inside_the_roots_is_read(tmp_path):
    roots = [(tmp_path / "roots").resolve()]
    tree = image_tree(roots[0] / "tree")
    shared = roots[0] / "shared.png"
    shared.write_bytes(encode_png(class_image(1, 7)))
    (tree / "train" / "dog" / "link.png").symlink_to(shared)
    data = image_folder.load_image_folder(str(tree), "train", confine_to=roots)
    assert len(data) == 5 and data.class_names == ["cat", "dog"]


def test_a_symlinked_cifar_batch_leading_out_of_the_roots_is_refused(tmp_path):
    roots = [(tmp_path / "roots").resolve()]
    write_cifar_batches(tmp_path / "outside")
    folder = roots[0] / "cifar"
    write_cifar_batches(folder)
    (folder / "test_batch").unlink()
    (folder / "test_batch").symlink_to(tmp_path / "outside" / "test_batch")
    with pytest.raises(DataError, match="test_batch: a symlink that leads outside"):
        cifar.load_cifar10_python(str(folder), "test", confine_to=roots)
    assert len(cifar.load_cifar10_python(str(folder), "train", confine_to=roots)) == 30


def test_an_oversized_cifar_batch_is_refused_before_it_is_read(tmp_path, monkeypatch):
    write_cifar_batches(tmp_path / "cifar")
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar", arcname="cifar-10-batches-py")
    monkeypatch.setattr(cifar, "MAX_BATCH_BYTES", 1000)
    for source in (tmp_path / "cifar", archive):
        with pytest.raises(DataError, match="larger than any CIFAR batch file"):
            cifar.load_cifar10_python(str(source), "test")


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_an_archive_member_that_is_not_an_image_is_refused_by_its_first_bytes(tmp_path):
    archive = write_tar(
        tmp_path / "zeros.tar.gz",
        {"train/cat/0.png": encode_png(class_image(0, 0)), "train/dog/0.png": bytes(4 * 1024**2)},
    )
    with pytest.raises(DataError, match=r"dog/0\.png: not a decodable image \(its first bytes"):
        image_folder.load_image_folder(str(archive), "train")


@pytest.mark.parametrize("encode", [encode_png, encode_jpeg])
def test_an_image_of_another_size_is_resized_to_32x32(tmp_path, encode):
    big = np.zeros((600, 800, 3), np.uint8)
    big[:, :, 0], big[:, 400:, 2] = 200, 100  # red everywhere, blue on the right half
    archive = write_tar(
        tmp_path / "big.tar.gz",
        {"train/cat/0.img.png": encode(big), "train/dog/0.png": encode_png(class_image(1, 0))},
    )
    data = image_folder.load_image_folder(str(archive), "train")
    assert data.x.shape == (2, 32, 32, 3)
    cat = data.x[data.class_names.index("cat")].astype(int)
    assert abs(cat[:, :, 0].mean() - 200) <= 3  # averaged down, not cropped or zero-padded
    assert cat[:, :14, 2].max() <= 3 and cat[:, 18:, 2].min() >= 97
    assert data.source_sizes == {"800x600": 1, "32x32": 1}


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "MAX_IMAGE_PIXELS", 64 * 64)
    archive = write_tar(
        tmp_path / "big.tar.gz", {"train/cat/0.png": encode_png(np.zeros((65, 64, 3), np.uint8))}
    )
    monkeypatch.setattr(image_folder.tf.io, "decode_image", None)  # refused before decoding
    with pytest.raises(DataError, match=r"0\.png: image is 64x65 pixels, over the limit of 4096"):
        image_folder.load_image_folder(str(archive), "train")


def test_headers_give_format_and_size_without_decoding():
    gif = b"GIF89a" + struct.pack("<HH", 32, 16) + bytes(20)
    bmp = b"BM" + bytes(12) + struct.pack("<Iii", 40, 32, -32) + bytes(10)
    jpeg = encode_jpeg(np.zeros((20, 30, 3), np.uint8))
    png = encode_png(np.zeros((5, 7, 3), np.uint8))
    found = [read_image_header(io.BytesIO(raw), "x")[:3] for raw in (gif, bmp, jpeg, png)]
    assert found == [("gif", 32, 16), ("bmp", 32, 32), ("jpeg", 30, 20), ("png", 7, 5)]
    _, _, _, consumed = read_image_header(io.BytesIO(jpeg), "x")
    assert jpeg.startswith(consumed) and len(consumed) < len(jpeg)
    with pytest.raises(DataError, match="truncated image header"):
        read_image_header(io.BytesIO(jpeg[:10]), "x")
