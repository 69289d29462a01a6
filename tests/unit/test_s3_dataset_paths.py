"""Which s3:// archives a job may name: only in the service's bucket, and never among the
service's own objects (another tenant's uploaded dataset is read by key in the same bucket)."""

from __future__ import annotations

import pytest

from tass.core.datasets import s3_dataset_location

UPLOAD = "datasets/0123456789abcdef0123456789abcdef/archive.tar.gz"


@pytest.mark.parametrize(
    ("store", "path"),
    [
        ("s3://tass/artifacts", f"s3://tass/artifacts/{UPLOAD}"),
        ("s3://tass/artifacts", "s3://tass/artifacts/models/j/attempt-1/weights.zip"),
        ("s3://tass/artifacts/", "s3://tass/artifacts/anything.tar"),
        ("s3://tass/team/store", "s3://tass/team/store/jobs/j/ckpt.tar.gz"),
        ("s3://tass", f"s3://tass/{UPLOAD}"),
        ("s3://tass", "s3://tass/models/j/attempt-1/model.zip"),
        ("s3://tass", "s3://tass/jobs/j/attempt-1/checkpoints/epoch-0001/x.tar"),
    ],
)
def test_the_services_own_objects_are_refused(store: str, path: str) -> None:
    with pytest.raises(ValueError, match="where the service keeps its own objects"):
        s3_dataset_location(path, store)


@pytest.mark.parametrize(
    ("store", "path", "key"),
    [
        ("s3://tass/artifacts", "s3://tass/incoming/pets.tar.gz", "incoming/pets.tar.gz"),
        ("s3://tass/artifacts", f"s3://tass/{UPLOAD}", UPLOAD),  # outside the store's prefix
        ("s3://tass/artifacts", "s3://tass/artifacts-old/pets.zip", "artifacts-old/pets.zip"),
        ("s3://tass", "s3://tass/incoming/datasets/pets.tgz", "incoming/datasets/pets.tgz"),
    ],
)
def test_archives_elsewhere_in_the_bucket_are_accepted(store: str, path: str, key: str) -> None:
    assert s3_dataset_location(path, store).key == key
