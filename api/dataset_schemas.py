"""Response models of /v1/datasets."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tass.api.pagination import Items
from tass.api.presenters import from_row
from tass.contract.statuses import DatasetStatus
from tass.core.models import UploadedDataset


class DatasetOut(BaseModel):
    id: str
    name: str
    status: str = Field(description="validating, then ready or failed.")
    archive_format: str = Field(description="tar.gz, tar or zip (from the upload's type).")
    size: int = Field(description="Bytes of the archive as uploaded.")
    sha256: str = Field(description="Digest of the archive; jobs on it record this.")
    num_examples: int | None = Field(None, description="Images found (ready only).")
    classes: list[str] | None = Field(None, description="Class names, in label order.")
    class_counts: dict[str, dict[str, int]] | None = Field(
        None, description="Images per class, per split (train, and test when present)."
    )
    image_sizes: dict[str, int] | None = Field(None, description="Images per WxH size.")
    error: str | None = Field(None, description="Why validation failed (failed only).")
    created_at: datetime
    validated_at: datetime | None = None


class DatasetList(Items[DatasetOut]):
    pass


def dataset_out(dataset: UploadedDataset) -> DatasetOut:
    summary = dataset.summary or {}
    return from_row(
        DatasetOut,
        dataset,
        **{key: summary.get(key) for key in ("classes", "class_counts", "image_sizes")},
        validated_at=dataset.validated_at if dataset.status != DatasetStatus.VALIDATING else None,
    )
