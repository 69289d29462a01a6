"""`load_dataset`: one entry point for every data source named in a DatasetSpec."""

from __future__ import annotations

from pathlib import Path

from tass.contract.spec import DatasetSpec
from tass.trainer.data.cifar import CIFAR10_CLASSES, load_cifar10_python, load_keras_cifar10
from tass.trainer.data.dataset import Dataset
from tass.trainer.data.decoded_cache import DecodedCache
from tass.trainer.data.synthetic import synthetic_dataset
from tass.trainer.errors import DataError

__all__ = ["CIFAR10_CLASSES", "load_dataset"]


def load_dataset(
    spec: DatasetSpec,
    *,
    seed: int = 0,
    confine_to: list[Path] | None = None,
    image_size: int = 32,
    decoded_cache: Path | None = None,
) -> Dataset:
    """Load the split that `spec` names; `spec.limit` keeps the first N after a seeded shuffle.
    `confine_to` (resolved folders): every file read must lie inside one, after symlinks.
    Image folders are decoded at `image_size` (square; the other sources come at their own
    size: training resizes every image to the spec's size and channels). With `decoded_cache`
    (a folder), an archive's decoded pixels are kept there for the next load of it."""
    if spec.source == "dataset":
        raise DataError("an uploaded dataset (source 'dataset') is fetched by the service first")
    if spec.source == "cifar10":
        data = load_keras_cifar10(spec.split)
    elif spec.source == "cifar10-python":
        data = load_cifar10_python(str(spec.path), spec.split, confine_to=confine_to)
    elif spec.source == "image-folder":
        from tass.trainer.data.image_folder import load_image_folder  # imports TensorFlow

        data = load_image_folder(
            str(spec.path),
            spec.split,
            confine_to=confine_to,
            size=image_size,
            cache=DecodedCache(decoded_cache) if decoded_cache else None,
        )
    else:
        data = synthetic_dataset(spec.num_examples, spec.num_classes, spec.split, seed)
    if spec.limit is not None:
        data = data.limit(spec.limit, seed)
    return data
