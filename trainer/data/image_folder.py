"""Image folders (`train/<class>/*.jpg`, optional `test/<class>/`) from disk or a .tar.gz."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np
import tensorflow as tf

from trainer.data.dataset import Dataset
from trainer.errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
SPLITS = ("train", "test")
# Archive limits against decompression bombs: a 32x32 image is a few KB, CIFAR-10 is ~60 MB.
MAX_ARCHIVE_BYTES = 8 * 1024**3  # uncompressed, all members together
MAX_ARCHIVE_MEMBERS = 5_000_000
MAX_IMAGE_BYTES = 4 * 1024**2


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar"))


def _iter_folder(root: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    for file in sorted(root.rglob("*")):
        if file.is_file() and file.suffix.lower() in IMAGE_EXTENSIONS:
            yield PurePosixPath(file.relative_to(root).as_posix()), file


def _safe_member_path(root: Path, name: str) -> PurePosixPath:
    member = PurePosixPath(name)
    if member.is_absolute() or ".." in member.parts:
        raise DataError(f"{root}: refusing archive member with an unsafe path: {name!r}")
    return PurePosixPath(*[p for p in member.parts if p != "."])


def _layout(root: Path, paths: list[PurePosixPath], split: str) -> tuple[list[int], list[str]]:
    """Pick the files of `split` (indices into paths) and the sorted class names."""
    structured = [len(p.parts) >= 3 and p.parts[-3] in SPLITS for p in paths]
    if any(structured):
        by_split = {
            s: [i for i, p in enumerate(paths) if structured[i] and p.parts[-3] == s]
            for s in SPLITS
        }
        chosen = by_split[split]
        if not chosen:
            raise DataError(f"{root}: no {split}/<class>/ image folders found")
        reference = by_split["train"] or chosen
        class_names = sorted({paths[i].parts[-2] for i in reference})
        unknown = sorted({paths[i].parts[-2] for i in chosen} - set(class_names))
        if unknown:
            raise DataError(f"{root}: {split}/ has classes missing from train/: {unknown}")
        return chosen, class_names
    if split != "train":
        raise DataError(f"{root}: no {split}/ folder (class folders at top level count as train)")
    chosen = [i for i, p in enumerate(paths) if len(p.parts) >= 2]
    if not chosen:
        raise DataError(f"{root}: no images in class subfolders (expected train/<class>/*.jpg)")
    return chosen, sorted({paths[i].parts[-2] for i in chosen})


def _decode(raw: bytes, where: str) -> np.ndarray:
    try:
        image = tf.io.decode_image(raw, channels=3, expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise DataError(f"{where}: not a decodable image ({str(exc).splitlines()[0]})") from exc
    if image.shape[:2] != (32, 32):
        raise DataError(
            f"{where}: image is {image.shape[1]}x{image.shape[0]} pixels; the models take 32x32 "
            "(resize the dataset first)"
        )
    return image


def _decode_all(raws: list[bytes], wheres: list[str]) -> np.ndarray:
    """Decode in parallel with tf.data; on any failure find and report the bad file."""

    def decode(raw: tf.Tensor) -> tf.Tensor:
        return tf.io.decode_image(raw, channels=3, expand_animations=False)

    try:
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(raws, tf.string))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
        batches = [b.numpy() for b in ds]
        images = np.concatenate(batches) if batches else np.zeros((0, 32, 32, 3), np.uint8)
        if images.shape[1:] == (32, 32, 3):
            return images
    except (tf.errors.InvalidArgumentError, ValueError):
        pass
    return np.stack([_decode(raw, where) for raw, where in zip(raws, wheres, strict=True)])


def load_image_folder(path: str, split: str) -> Dataset:
    """Read one split of an image-folder tree; labels follow the sorted class folder names."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such image folder or archive")
    if _is_archive(root):
        return _load_archive(root, split)
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder or a .tar.gz of class folders")
    files = list(_iter_folder(root))
    chosen, class_names = _layout(root, [p for p, _ in files], split)
    raws, wheres, labels = [], [], []
    index = {name: i for i, name in enumerate(class_names)}
    for i in chosen:
        rel, file = files[i]
        try:
            raws.append(file.read_bytes())
        except OSError as exc:
            raise DataError(f"{file}: cannot read ({exc})") from exc
        wheres.append(str(file))
        labels.append(index[rel.parts[-2]])
    return Dataset(_decode_all(raws, wheres), np.asarray(labels, np.int64), class_names)


def _bounded_members(root: Path, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The archive's files, read header by header, refusing archives past the limits before
    their content is decompressed."""
    members, total = [], 0
    for count, member in enumerate(tar, start=1):
        total += member.size
        if total > MAX_ARCHIVE_BYTES or count > MAX_ARCHIVE_MEMBERS:
            raise DataError(
                f"{root}: archive too large (over {MAX_ARCHIVE_BYTES} bytes uncompressed or "
                f"{MAX_ARCHIVE_MEMBERS} members); refusing it"
            )
        if not member.isfile():
            continue
        if member.size > MAX_IMAGE_BYTES and Path(member.name).suffix.lower() in IMAGE_EXTENSIONS:
            raise DataError(f"{root}: member {member.name!r} is too large for a 32x32 image")
        members.append(member)
    return members


def _load_archive(root: Path, split: str) -> Dataset:
    """Read members straight from the archive (nothing is extracted to disk)."""
    try:
        with tarfile.open(root, "r:*") as tar:
            members = _bounded_members(root, tar)
            paths = [_safe_member_path(root, m.name) for m in members]
            keep = [i for i, p in enumerate(paths) if p.suffix.lower() in IMAGE_EXTENSIONS]
            chosen, class_names = _layout(root, [paths[i] for i in keep], split)
            index = {name: i for i, name in enumerate(class_names)}
            selected = sorted((paths[keep[i]], members[keep[i]]) for i in chosen)
            raws, wheres, labels = [], [], []
            for rel, member in selected:
                handle = tar.extractfile(member)
                raws.append(handle.read() if handle is not None else b"")
                wheres.append(f"{root}:{rel}")
                labels.append(index[rel.parts[-2]])
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{root}: not a readable .tar.gz archive ({exc})") from exc
    return Dataset(_decode_all(raws, wheres), np.asarray(labels, np.int64), class_names)
