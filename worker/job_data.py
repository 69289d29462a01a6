"""The images a job reads, from wherever its dataset spec says: a server-side path (checked
again against this worker's data roots), an uploaded dataset (fetched from the object store
into a local cache and checked against the sha256 the job recorded), or an s3:// archive in
the service's own bucket (read with the service's endpoint and credentials)."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tass.contract.spec import DatasetSpec
from tass.core.datapaths import resolve_dataset_path
from tass.core.datasets import dataset_key, s3_dataset_location
from tass.core.models import UploadedDataset
from tass.core.objectstore import ObjectStore
from tass.trainer.errors import DataError
from tass.worker.context import WorkerContext
from tass.worker.dataset_cache import evict, pinned

if TYPE_CHECKING:
    from tass.trainer.data import Dataset

log = logging.getLogger(__name__)
CACHE_FOLDER = "dataset-cache"


def load_job_dataset(ctx: WorkerContext, raw: dict[str, Any]) -> DatasetSpec:
    """Re-check a server-side path against this worker's data roots before reading it."""
    spec = DatasetSpec.model_validate(raw)
    if spec.path is not None and not spec.path.startswith("s3://"):
        path = resolve_dataset_path(spec.path, ctx.settings.resolved_data_roots)
        spec = spec.model_copy(update={"path": str(path)})
    return spec


@contextmanager
def cached_upload(ctx: WorkerContext, dataset_id: str, sha256: str) -> Iterator[Path]:
    """The uploaded archive as a local file whose bytes hash to `sha256` (the digest the job
    recorded at submit), pinned in the host's cache for the length of the block: reused from
    the cache when it is there and still hashes right, else downloaded and checked on the way.
    DataError when the dataset is gone."""
    with ctx.sessions() as session:
        dataset = session.get(UploadedDataset, dataset_id)
        archive_format = dataset.archive_format if dataset is not None else None
    if archive_format is None:
        raise DataError(f"dataset {dataset_id!r} no longer exists")
    cache = ctx.settings.data_dir / CACHE_FOLDER
    cache.mkdir(parents=True, exist_ok=True)
    with pinned(cache / f"{sha256}.{archive_format}") as final:
        if final.exists() and _file_sha256(final) == sha256:
            final.touch()
        else:
            partial = cache / f".{sha256}.{os.getpid()}.{archive_format}"
            ctx.store.download(dataset_key(dataset_id, archive_format), partial, sha256)
            os.replace(partial, final)
        evict(cache)
        yield final


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_s3_archive(ctx: WorkerContext, path: str, workdir: Path) -> Path:
    """An s3:// archive path (inside the service's bucket, checked again here) downloaded into
    the job's working folder."""
    try:
        location = s3_dataset_location(path, ctx.settings.resolved_artifact_url)
    except ValueError as exc:
        raise DataError(f"dataset.path {path!r} {exc}") from exc
    local = workdir / "dataset" / location.key.rsplit("/", 1)[-1]
    verified = ObjectStore(f"s3://{location.bucket}").download(location.key, local, None)
    log.info("dataset %s fetched (%s bytes, sha256 %s)", path, verified.size, verified.sha256)
    return local


DECODED_CACHE = "decoded-cache"
"""Under TASS_DATA_DIR: archives' decoded pixels, which the next job on the same archive reads
instead of decoding it again (tass.trainer.data.decoded_cache)."""


def load_job_data(
    ctx: WorkerContext, raw: dict[str, Any], workdir: Path, image_size: int = 32
) -> Dataset:
    """The job's images and labels, ready for training or evaluation; image folders and
    uploaded datasets decoded at `image_size` (the model's input size)."""
    from tass.trainer.data import load_dataset

    spec = load_job_dataset(ctx, raw)
    decoded = ctx.settings.data_dir / DECODED_CACHE
    if spec.source == "dataset":
        if spec.id is None or spec.sha256 is None:  # the API records both at submit
            raise ValueError("the job's dataset names no uploaded dataset id and sha256")
        with cached_upload(ctx, spec.id, spec.sha256) as local:
            # our own, digest-checked file, read while it is pinned in the cache
            return load_dataset(
                _as_image_folder(spec, local),
                confine_to=None,
                image_size=image_size,
                decoded_cache=decoded,
            )
    if spec.path is not None and spec.path.startswith("s3://"):
        # a fresh download per job: its pixels are not kept (it would only evict the others)
        local = fetch_s3_archive(ctx, spec.path, workdir)
        return load_dataset(_as_image_folder(spec, local), confine_to=None, image_size=image_size)
    return load_dataset(
        spec,
        confine_to=ctx.settings.resolved_data_roots,
        image_size=image_size,
        decoded_cache=decoded,
    )


def _as_image_folder(spec: DatasetSpec, local: Path) -> DatasetSpec:
    return DatasetSpec(source="image-folder", path=str(local), split=spec.split, limit=spec.limit)
