"""Image folders (`train/<class>/*.jpg`, optional `test/<class>/`) from disk, a .tar.gz or a
.zip."""

from __future__ import annotations

import tarfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np
import tensorflow as tf

from tass.trainer.data.dataset import Dataset
from tass.trainer.data.decoded_cache import DecodedCache
from tass.trainer.data.image_header import ByteSource, read_image_header
from tass.trainer.data.zip_directory import zip_entry_count
from tass.trainer.errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}
SPLITS = ("train", "test")
# Archive limits against decompression bombs: a 32x32 image is a few KB, CIFAR-10 is ~60 MB.
MAX_ARCHIVE_BYTES = 8 * 1024**3  # uncompressed, all members together
MAX_ARCHIVE_MEMBERS = 5_000_000
MAX_IMAGE_BYTES = 4 * 1024**2  # declared size of one file, checked before it is read
# Images of any other size are resized to the size asked for (IMAGE_SIZE unless a spec's
# image_size says otherwise; area averaging, as a thumbnail is made);
# their pixel count, read from the header, is capped before anything is decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
# encoded image bytes one load may hold in memory (CIFAR-10 as PNGs is ~150 MB)
MAX_ENCODED_BYTES = 2 * 1024**3
IMAGE_SIZE = (32, 32)
# decoded uint8 pixels one load may hold (N x size x size x 3): a large image_size multiplies
# it (CIFAR-10's 60k images are 184 MB at 32x32, 9 GB at 224x224)
MAX_DECODED_BYTES = 16 * 1024**3


def check_deadline(root: Path, deadline: float | None) -> None:
    """Refuse to go on past `deadline` (a time.monotonic() value; None: no deadline)."""
    if deadline is not None and time.monotonic() > deadline:
        raise DataError(f"{root}: reading it took longer than the time allowed; refusing it")


class _Budget:
    """Counts the encoded bytes held so far and refuses a dataset past MAX_ENCODED_BYTES, or
    once the deadline (time.monotonic(); None: none) has passed."""

    def __init__(self, root: Path, deadline: float | None = None) -> None:
        self.root, self.used, self.deadline = root, 0, deadline

    def charge(self, size: int) -> None:
        check_deadline(self.root, self.deadline)
        self.used += size
        if self.used > MAX_ENCODED_BYTES:
            raise DataError(
                f"{self.root}: over {MAX_ENCODED_BYTES} bytes of images; refusing to hold more"
            )


class EncodedImages:
    """The encoded bytes of the images read so far, where each came from, and how many of each
    original size (WxH, from the headers) there were."""

    def __init__(self, size: int = IMAGE_SIZE[0]) -> None:
        self.size = size  # the square size the images are decoded at
        self.raws: list[bytes] = []
        self.wheres: list[str] = []
        self.sizes: Counter[str] = Counter()

    def add(self, handle: ByteSource, where: str, size: int, budget: _Budget) -> None:
        """Read one image file of declared `size`, whole only after its size, its magic bytes
        and its pixel dimensions (from the header) passed."""
        if size > MAX_IMAGE_BYTES:
            raise DataError(f"{where}: {size} bytes is over the {MAX_IMAGE_BYTES}-byte image limit")
        _, width, height, head = read_image_header(handle, where)
        if width * height > MAX_IMAGE_PIXELS:
            raise DataError(
                f"{where}: image is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS}"
                " pixels (larger images are resized to the model's size)"
            )
        budget.charge(size)
        raw = head + handle.read(max(size - len(head), 0) + 1)  # never more than declared
        if len(raw) > size:
            raise DataError(f"{where}: longer than its declared {size} bytes")
        self.raws.append(raw)
        self.wheres.append(where)
        self.sizes[f"{width}x{height}"] += 1

    def reorder(self, order: list[int]) -> None:
        """Put the images in `order` (indices into the order they were read in)."""
        self.raws = [self.raws[k] for k in order]
        self.wheres = [self.wheres[k] for k in order]

    def decode(self, labels: list[int], class_names: list[str]) -> Dataset:
        decoded = len(self.raws) * self.size * self.size * 3
        if decoded > MAX_DECODED_BYTES:
            raise DataError(
                f"{len(self.raws)} images at {self.size}x{self.size} take {decoded} bytes "
                f"decoded, over the limit of {MAX_DECODED_BYTES}: use a smaller image_size "
                "or a dataset limit"
            )
        other_sizes = set(self.sizes) - {f"{self.size}x{self.size}"}
        images = _decode_all(self.raws, self.wheres, self.size, resize=bool(other_sizes))
        return Dataset(images, np.asarray(labels, np.int64), class_names, dict(self.sizes))


def confined(file: Path, shown: str, roots: list[Path] | None) -> Path:
    """`file` after symlinks, refused unless it stays inside `roots` (None: no confinement).
    The message names the path as the dataset has it, never where a link points."""
    if roots is None:
        return file
    try:
        resolved = file.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise DataError(f"{shown}: cannot be read (a symlink loop or an unreadable path)") from exc
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise DataError(f"{shown}: a symlink that leads outside the data roots; refusing it")
    return resolved


TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
ZIP_SUFFIXES = (".zip",)
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, ValueError)


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


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


def _to_model_size(image: tf.Tensor, size: int) -> tf.Tensor:
    """A decoded uint8 image at size x size: ones of that size untouched, others averaged down
    (or interpolated up) with antialiasing and rounded back to uint8. Eager or traced."""

    def resized() -> tf.Tensor:
        smooth = tf.image.resize(image, (size, size), method="area", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(smooth), 0, 255), tf.uint8)

    same = tf.reduce_all(tf.equal(tf.shape(image)[:2], (size, size)))
    return tf.ensure_shape(tf.cond(same, lambda: image, resized), (size, size, 3))


def _decode(raw: bytes, where: str, size: int) -> np.ndarray:
    try:
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise DataError(f"{where}: not a decodable image ({str(exc).splitlines()[0]})") from exc
    return _to_model_size(image, size).numpy()


def _decode_all(raws: list[bytes], wheres: list[str], size: int, resize: bool) -> np.ndarray:
    """Decode in parallel with tf.data (resizing only when some header named another size than
    size x size); on any failure find and report the bad file."""

    def decode(raw: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(raw, channels=3, expand_animations=False)
        return _to_model_size(image, size) if resize else image

    try:
        ds = tf.data.Dataset.from_tensor_slices(tf.constant(raws, tf.string))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).batch(1024)
        batches = [b.numpy() for b in ds]
        return np.concatenate(batches) if batches else np.zeros((0, size, size, 3), np.uint8)
    except (tf.errors.InvalidArgumentError, ValueError):
        pass
    return np.stack([_decode(raw, where, size) for raw, where in zip(raws, wheres, strict=True)])


def load_image_folder(
    path: str,
    split: str,
    *,
    confine_to: list[Path] | None = None,
    deadline: float | None = None,
    size: int = IMAGE_SIZE[0],
    cache: DecodedCache | None = None,
) -> Dataset:
    """Read one split of an image-folder tree at size x size RGB (other sizes are resized);
    labels follow the sorted class folder names.
    With `confine_to`, every file must resolve (after symlinks) inside one of those folders;
    with `deadline` (a time.monotonic() value), DataError once reading runs past it. With
    `cache`, an archive's decoded pixels are kept there and the next load of the same archive
    file reads them back instead of decoding (folders are read as they are every time)."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such image folder or archive")
    if _is_archive(root):
        confined(root, str(root), confine_to)
        if cache is None:
            return _load_archive(root, split, deadline, size)
        key = cache.key(root, split, size)
        data = cache.get(key)
        if data is None:
            data = _load_archive(root, split, deadline, size)
            cache.put(key, data)
        return data
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder, a .tar.gz or a .zip of class folders")
    files = list(_iter_folder(root))
    chosen, class_names = _layout(root, [p for p, _ in files], split)
    images, labels = EncodedImages(size), []
    index = {name: i for i, name in enumerate(class_names)}
    budget = _Budget(root, deadline)
    for i in chosen:
        rel, file = files[i]
        real = confined(file, str(file), confine_to)
        try:
            with open(real, "rb") as handle:
                images.add(handle, str(file), real.stat().st_size, budget)
        except OSError as exc:
            raise DataError(f"{file}: cannot read ({exc})") from exc
        labels.append(index[rel.parts[-2]])
    return images.decode(labels, class_names)


def _check_archive_totals(root: Path, total: int, count: int) -> None:
    if total > MAX_ARCHIVE_BYTES or count > MAX_ARCHIVE_MEMBERS:
        raise DataError(
            f"{root}: archive too large (over {MAX_ARCHIVE_BYTES} bytes uncompressed or "
            f"{MAX_ARCHIVE_MEMBERS} members); refusing it"
        )


def _check_member_size(root: Path, name: str, size: int) -> None:
    if size > MAX_IMAGE_BYTES and Path(name).suffix.lower() in IMAGE_EXTENSIONS:
        raise DataError(f"{root}: member {name!r} is over the {MAX_IMAGE_BYTES}-byte image limit")


def _bounded_members(
    root: Path, tar: tarfile.TarFile, deadline: float | None = None
) -> list[tuple[str, int]]:
    """The archive's files (name, declared size), read header by header, refusing archives
    past the limits before their content is decompressed."""
    members, total = [], 0
    for count, member in enumerate(tar, start=1):
        check_deadline(root, deadline)
        total += member.size
        _check_archive_totals(root, total, count)
        if not member.isfile():
            continue
        _check_member_size(root, member.name, member.size)
        members.append((member.name, member.size))
    return members


def _open_zip(root: Path) -> zipfile.ZipFile:
    """The zip, opened only once its entry count is within the limit: the count is read from
    the file before zipfile builds its directory (memory that grows with every entry)."""
    with open(root, "rb") as handle:
        _check_archive_totals(root, 0, zip_entry_count(handle, MAX_ARCHIVE_MEMBERS))
    return zipfile.ZipFile(root)


def _bounded_zip_members(root: Path, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The zip's files, from its central directory, refused past the same limits (the sizes a
    zip declares are enforced while reading: zipfile stops at them and checks the CRC)."""
    infos = archive.infolist()
    _check_archive_totals(root, sum(i.file_size for i in infos), len(infos))
    members = [i for i in infos if not i.is_dir()]
    for info in members:
        _check_member_size(root, info.filename, info.file_size)
    return members


# Reads the regular files with the given indices (ascending: the order they lie in the
# archive), yielding each index with an open handle on the member's bytes (None: not a file).
MemberReader = Callable[[list[int]], Iterator[tuple[int, IO[bytes] | None]]]


def _read_members(
    root: Path,
    split: str,
    members: list[tuple[str, int]],
    read_members: MemberReader,
    budget: _Budget,
    size: int,
) -> Dataset:
    """Read the chosen split's images from an archive's members (nothing touches the disk).
    The members are read in the order they lie in the archive (one forward pass: a gzip
    stream read out of order restarts decompression at each backward step), then the images
    and their labels are put in the order of their sorted paths."""
    paths = [_safe_member_path(root, name) for name, _ in members]
    keep = [i for i, p in enumerate(paths) if p.suffix.lower() in IMAGE_EXTENSIONS]
    chosen, class_names = _layout(root, [paths[i] for i in keep], split)
    index = {name: i for i, name in enumerate(class_names)}
    wanted = sorted(keep[i] for i in chosen)
    images, labels, read = EncodedImages(size), [], []
    for member, handle in read_members(wanted):
        rel = paths[member]
        if handle is None:
            raise DataError(f"{root}:{rel}: not a regular file")
        images.add(handle, f"{root}:{rel}", members[member][1], budget)
        labels.append(index[rel.parts[-2]])
        read.append(rel)
    if len(read) != len(wanted):
        raise DataError(f"{root}: the archive changed while it was read")
    order = sorted(range(len(read)), key=read.__getitem__)
    images.reorder(order)
    return images.decode([labels[k] for k in order], class_names)


def _tar_reader(root: Path) -> MemberReader:
    """Read a tar's files in one streaming pass (tarfile's `r|*` mode: it never seeks)."""

    def read(wanted: list[int]) -> Iterator[tuple[int, IO[bytes] | None]]:
        targets, position = set(wanted), 0
        if not targets:
            return
        with tarfile.open(root, "r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if position in targets:
                    yield position, tar.extractfile(member)
                position += 1
                if position > wanted[-1]:
                    return

    return read


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__


def _load_archive(root: Path, split: str, deadline: float | None, size: int) -> Dataset:
    """Read members straight from the archive (nothing is extracted to disk)."""
    if root.name.endswith(ZIP_SUFFIXES):
        return _load_zip(root, split, deadline, size)
    try:
        with tarfile.open(root, "r|*") as tar:
            listed = _bounded_members(root, tar, deadline)
        reader = _tar_reader(root)
        return _read_members(root, split, listed, reader, _Budget(root, deadline), size)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{root}: not a readable .tar.gz archive ({_first_line(exc)})") from exc


def _load_zip(root: Path, split: str, deadline: float | None, size: int) -> Dataset:
    try:
        with _open_zip(root) as archive:
            members = _bounded_zip_members(root, archive)
            listed = [(m.filename, m.file_size) for m in members]
            return _read_members(
                root,
                split,
                listed,
                lambda wanted: ((i, archive.open(members[i])) for i in wanted),
                _Budget(root, deadline),
                size,
            )
    except DataError:
        raise
    except (*ZIP_ERRORS, OSError, EOFError) as exc:
        raise DataError(f"{root}: not a readable .zip archive ({_first_line(exc)})") from exc


def archive_member_names(path: str, deadline: float | None = None) -> list[str]:
    """The regular files' names in a .tar.gz or .zip (under the archive limits)."""
    root = Path(path)
    try:
        if root.name.endswith(ZIP_SUFFIXES):
            with _open_zip(root) as archive:
                return [m.filename for m in _bounded_zip_members(root, archive)]
        with tarfile.open(root, "r|*") as tar:
            return [name for name, _ in _bounded_members(root, tar, deadline)]
    except DataError:
        raise
    except (*ZIP_ERRORS, tarfile.TarError, OSError, EOFError) as exc:
        kind = ".zip" if root.name.endswith(ZIP_SUFFIXES) else ".tar.gz"
        raise DataError(f"{root}: not a readable {kind} archive ({_first_line(exc)})") from exc


def splits_present(root: Path, names: list[str]) -> list[str]:
    """The splits an image-folder layout holds: train and test when `train/` or `test/` class
    folders exist, else train alone (class folders at the top level)."""
    paths = [_safe_member_path(root, n) for n in names]
    images = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS]
    structured = {p.parts[-3] for p in images if len(p.parts) >= 3 and p.parts[-3] in SPLITS}
    return [s for s in SPLITS if s in structured] if structured else ["train"]
