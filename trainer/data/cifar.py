"""CIFAR-10 from Keras' downloader or from an extracted cifar-10-batches-py folder or .tar.gz."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from tass.trainer.data.dataset import Dataset
from tass.trainer.errors import DataError

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
# a real batch pickle is ~31 MB and batches.meta a few hundred bytes: members are checked
# against these limits (declared size, count) before their content is read
MAX_BATCH_BYTES = 64 * 1024**2
MAX_ARCHIVE_MEMBERS = 1000
OTHER_SOURCES = (
    "cifar10-python:PATH (an extracted cifar-10-batches-py folder), image-folder:PATH or synthetic"
)


def load_keras_cifar10(split: str) -> Dataset:
    """`keras.datasets.cifar10.load_data()`: downloads on first use, then reads Keras' cache."""
    from keras.datasets import cifar10

    try:
        (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    except Exception as exc:  # urllib, HTTP and archive errors all mean "not available here"
        raise DataError(
            f"could not download CIFAR-10 with keras.datasets.cifar10.load_data() ({exc}); "
            f"offline? use one of the other sources: {OTHER_SOURCES}"
        ) from exc
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    return Dataset(x.astype(np.uint8), y.reshape(-1).astype(np.int64), list(CIFAR10_CLASSES))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only, so a crafted file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"{where}: not a readable CIFAR batch pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a CIFAR batch (expected a dict, got {type(obj).__name__})")
    return obj


def _decode_batch(batch: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise DataError(f"{where}: CIFAR batch has no 'data' and 'labels' entries")
    data = np.asarray(data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise DataError(f"{where}: expected data of shape (N, 3072) and N labels, got {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _check_size(where: str, size: int) -> None:
    if size > MAX_BATCH_BYTES:
        raise DataError(
            f"{where}: {size} bytes is larger than any CIFAR batch file "
            f"(limit {MAX_BATCH_BYTES}); refusing to read it"
        )


def _read_folder(
    folder: Path, wanted: list[str], confine_to: list[Path] | None
) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for name in wanted:
        file = folder / name
        if not file.is_file():
            continue
        real = file
        if confine_to is not None:
            real = file.resolve()
            if not any(real == root or real.is_relative_to(root) for root in confine_to):
                raise DataError(f"{file}: a symlink that leads outside the data roots; refusing it")
        _check_size(str(file), real.stat().st_size)
        found[name] = real.read_bytes()
    return found


def _read_members(
    path: Path, names: list[str], confine_to: list[Path] | None = None
) -> dict[str, bytes]:
    """The raw bytes of `names` (and batches.meta if present) from a folder or a .tar.gz."""
    wanted = [*names, "batches.meta"]
    found: dict[str, bytes] = {}
    if path.is_dir():
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        return _read_folder(folder, wanted, confine_to)
    try:
        with tarfile.open(path, "r:*") as tar:
            for count, member in enumerate(tar, start=1):
                if count > MAX_ARCHIVE_MEMBERS:
                    raise DataError(f"{path}: over {MAX_ARCHIVE_MEMBERS} archive members")
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    _check_size(f"{path}:{member.name}", member.size)
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[base] = handle.read(MAX_BATCH_BYTES)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable cifar-10-python archive ({exc})") from exc
    return found


def load_cifar10_python(path: str, split: str, *, confine_to: list[Path] | None = None) -> Dataset:
    """Read data_batch_1..5 (train) or test_batch (test) pickles from `path`; with
    `confine_to`, files reached through symlinks must stay inside those folders."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such cifar-10-batches-py folder or archive")
    names = TRAIN_BATCHES if split == "train" else TEST_BATCHES
    raw = _read_members(root, names, confine_to)
    missing = [n for n in names if n not in raw]
    if missing:
        raise DataError(f"{root}: missing CIFAR batch file(s) {', '.join(missing)}")
    xs, ys = [], []
    for name in names:
        x, y = _decode_batch(_unpickle(raw[name], f"{root}/{name}"), f"{root}/{name}")
        xs.append(x)
        ys.append(y)
    class_names = list(CIFAR10_CLASSES)
    if "batches.meta" in raw:
        meta = _unpickle(raw["batches.meta"], f"{root}/batches.meta")
        names_raw = meta.get(b"label_names", meta.get("label_names"))
        if names_raw:
            class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names_raw]
    y_all = np.concatenate(ys)
    if y_all.max(initial=0) >= len(class_names) or y_all.min(initial=0) < 0:
        raise DataError(f"{root}: labels out of range for {len(class_names)} classes")
    return Dataset(np.concatenate(xs), y_all, class_names)
