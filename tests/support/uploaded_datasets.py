"""An uploaded dataset as the API leaves it (archive stored, row `validating`), for worker tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tass.core.datasets import create_dataset, dataset_key
from tass.core.models import UploadedDataset, new_id
from tass.worker.context import WorkerContext


def uploaded(ctx: WorkerContext, data: bytes, age: timedelta = timedelta(0)) -> tuple[str, str]:
    """Store `data` as a tar.gz upload of tenant `t`, made `age` ago: (dataset id, sha256)."""
    dataset_id = new_id()
    stored = ctx.store.put_bytes(dataset_key(dataset_id, "tar.gz"), data)
    with ctx.sessions.begin() as session:
        create_dataset(
            session,
            id=dataset_id,
            tenant="t",
            name="pets",
            archive_format="tar.gz",
            key=stored.key,
            size=stored.size,
            sha256=stored.sha256,
            created_at=datetime.now(timezone.utc) - age,
        )
    return dataset_id, stored.sha256


def read_dataset(ctx: WorkerContext, dataset_id: str) -> UploadedDataset:
    with ctx.sessions() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        assert dataset is not None
        return dataset
