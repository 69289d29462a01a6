"""The in-memory dataset type and the seeded operations on it (limit, stratified split)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tass.trainer.errors import DataError

IMAGE_SHAPE = (32, 32, 3)


@dataclass
class Dataset:
    """Images as uint8 (N, height, width, channels), channels 3 (RGB) or 1 (grayscale); 32x32
    RGB unless a loader was asked for another size. Labels as int (N,), label i named
    class_names[i]."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    # how many images of each original size ("WxH") were read, for sources that resize
    source_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dtype != np.uint8 or self.x.ndim != 4 or self.x.shape[3] not in (1, 3):
            raise DataError(
                f"images must be uint8 (N, height, width, 1 or 3), got {self.x.dtype} "
                f"{self.x.shape}"
            )
        if self.y.shape != (len(self.x),):
            raise DataError(f"labels must have shape ({len(self.x)},), got {self.y.shape}")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.class_names)):
            raise DataError(f"labels must lie in [0, {len(self.class_names)})")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of every image."""
        height, width, channels = self.x.shape[1:]
        return int(height), int(width), int(channels)

    def subset(self, indices: np.ndarray) -> Dataset:
        """The examples at `indices`, in that order."""
        return Dataset(self.x[indices], self.y[indices], list(self.class_names))

    def limit(self, n: int, seed: int = 0) -> Dataset:
        """The first `n` examples after a seeded shuffle (all of them, shuffled, if fewer)."""
        order = np.random.default_rng(seed).permutation(len(self))
        return self.subset(order[:n])


def stratified_split(data: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """Hold out `fraction` of each class (after a seeded shuffle): returns (train, validation)."""
    rng = np.random.default_rng(seed)
    train_idx: list[np.ndarray] = []
    val_idx: list[np.ndarray] = []
    for label in range(data.num_classes):
        members = np.flatnonzero(data.y == label)
        rng.shuffle(members)
        n_val = min(round(len(members) * fraction), max(len(members) - 1, 0))
        val_idx.append(members[:n_val])
        train_idx.append(members[n_val:])
    train, val = np.concatenate(train_idx), np.concatenate(val_idx)
    if len(val) == 0:
        raise DataError(
            f"validation_split={fraction} leaves no validation examples out of {len(data)}; "
            "use more data, a larger split or validation_split=0"
        )
    # Interleave the classes again so neither part is sorted by label.
    return data.subset(rng.permutation(train)), data.subset(rng.permutation(val))
