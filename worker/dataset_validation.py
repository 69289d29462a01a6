"""The validation of an uploaded dataset, on a worker: fetch the archive (checked against the
sha256 the upload computed), read and decode every image under the archive limits, and mark
the dataset `ready` with what it holds or `failed` with the reason."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tass.core.datasets import mark_validation_started, record_validation
from tass.core.models import UploadedDataset
from tass.trainer.artifacts import ArtifactError
from tass.trainer.errors import DataError
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)


def _inspect(ctx: WorkerContext, dataset: UploadedDataset, workdir: Path) -> dict[str, Any]:
    from tass.trainer.data.describe import describe_archive  # imports TensorFlow

    local = workdir / f"archive.{dataset.archive_format}"
    ctx.store.download(dataset.key, local, dataset.sha256)
    return describe_archive(local, shown=dataset.name)


def run_validate_dataset(ctx: WorkerContext, dataset_id: str) -> None:
    with ctx.sessions.begin() as session:
        if not mark_validation_started(session, dataset_id):
            log.info("dataset %s is not awaiting validation; skipping", dataset_id)
            return
        dataset = session.get(UploadedDataset, dataset_id)
        assert dataset is not None
        session.expunge(dataset)
    workdir = Path(tempfile.mkdtemp(prefix=f"tass-dataset-{dataset_id}-"))
    summary: dict[str, Any] | None = None
    error: str | None = None
    try:
        summary = _inspect(ctx, dataset, workdir)
    except DataError as exc:
        error = str(exc)
    except ArtifactError as exc:
        error = f"the stored archive cannot be read back: {exc}"
    except Exception as exc:  # anything else still ends the validation, with its reason
        log.exception("dataset %s: validation failed", dataset_id)
        error = f"validation failed: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    with ctx.sessions.begin() as session:
        record_validation(session, dataset_id, summary, error)
    log.info("dataset %s: %s", dataset_id, "ready" if error is None else f"failed: {error}")
