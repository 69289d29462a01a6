"""What an image-folder archive holds, found by reading and decoding every image in it under
the archive limits: the check an uploaded dataset passes before it can be trained on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from tass.trainer.data.image_folder import (
    archive_member_names,
    load_image_folder,
    splits_present,
)
from tass.trainer.errors import DataError


def describe_archive(path: Path, shown: str, deadline: float | None = None) -> dict[str, Any]:
    """num_examples, classes, per-split per-class counts and image sizes of the .tar.gz or
    .zip at `path`. DataError names the problem (a corrupt archive, no class folders, an
    unreadable image by its path inside the archive, reading past `deadline`, a
    time.monotonic() value), with `path` itself written `shown`."""
    try:
        splits = splits_present(path, archive_member_names(str(path), deadline))
        loaded = {split: load_image_folder(str(path), split, deadline=deadline) for split in splits}
    except DataError as exc:
        raise DataError(str(exc).replace(str(path), shown)) from exc
    classes = loaded["train"].class_names
    counts = {
        split: dict(zip(classes, np.bincount(data.y, minlength=len(classes)).tolist(), strict=True))
        for split, data in loaded.items()
    }
    sizes: Counter[str] = Counter()
    for data in loaded.values():
        sizes.update(data.source_sizes)
    return {
        "num_examples": sum(len(data) for data in loaded.values()),
        "classes": classes,
        "class_counts": counts,
        # as uploaded; training reads each at the job's spec.image_size (32x32 by default)
        "image_sizes": dict(sorted(sizes.items(), key=lambda item: -item[1])),
    }
