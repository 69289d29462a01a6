"""Shared helpers for the benchmarks: the real CIFAR-10 archive and the textbook recipe."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tass.trainer.data import Dataset

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_ARCHIVE = "/work/shared/datasets/cifar10-jpeg-train.tar.gz"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import tensorflow as tf

    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "tensorflow": tf.__version__,
        "loadavg_at_start": os.getloadavg(),
    }


def load_real(archive: str, limit: int | None = None) -> Dataset:
    """The real CIFAR-10 training split from the JPEG archive, via the trainer's loader."""
    from tass.contract.spec import DatasetSpec
    from tass.trainer.data import load_dataset

    start = time.perf_counter()
    data = load_dataset(DatasetSpec(source="image-folder", path=archive, limit=limit))
    print(
        f"loaded {len(data)} images from {archive} in {time.perf_counter() - start:.1f}s",
        flush=True,
    )
    return data


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2))
        print(f"wrote {path}", flush=True)
