"""Helpers for the trainer unit tests: tiny generated datasets in each real on-disk format."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from tass.contract.spec import TrainSpec

CLASSES = ["cat", "dog", "frog"]


def tiny_spec(**overrides: object) -> TrainSpec:
    """A small model that still learns quickly; XLA off because compiling costs more than it
    saves on runs this short (the CLI test covers the XLA default)."""
    fields: dict[str, object] = {"width": 0.5, "epochs": 2, "batch_size": 32, "jit_compile": "off"}
    fields.update(overrides)
    return TrainSpec.model_validate(fields)


def write_cifar_batches(folder: Path, per_batch: int = 6) -> dict[str, tuple[np.ndarray, list]]:
    """A cifar-10-batches-py folder in the real pickle format (row-major CHW bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    written = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        payload = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
        written[name] = (data, labels)
    meta = {
        b"label_names": [n.encode() for n in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")]
    }
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def encode_png(image: np.ndarray) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(image).numpy()


def encode_jpeg(image: np.ndarray) -> bytes:
    import tensorflow as tf

    return tf.io.encode_jpeg(image, quality=95).numpy()


def class_image(label: int, index: int) -> np.ndarray:
    """A flat-coloured 32x32 image whose colour identifies the class (survives JPEG)."""
    image = np.zeros((32, 32, 3), np.uint8)
    image[..., label % 3] = 200
    image[0, 0] = index
    return image


def write_image_tree(root: Path, per_class: int = 3, with_test: bool = True) -> Path:
    """root/train/<class>/NNNN.png|jpg and root/test/<class>/... like the real archive."""
    for split, count in (("train", per_class), ("test", 2 if with_test else 0)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            if count:
                folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = class_image(label, i)
                if i % 2:
                    (folder / f"{i:04d}.jpg").write_bytes(encode_jpeg(image))
                else:
                    (folder / f"{i:04d}.png").write_bytes(encode_png(image))
    return root


def tar_tree(root: Path, archive: Path, arcname: str = "") -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for split in sorted(p for p in root.iterdir() if p.is_dir()):
            tar.add(split, arcname=f"{arcname}{split.name}")
    return archive


def add_tar_member(archive: Path, name: str, payload: bytes) -> None:
    """Append (by rewriting) one raw member, e.g. with an unsafe path."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
