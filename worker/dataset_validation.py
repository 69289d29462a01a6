"""The validation of an uploaded dataset, on a worker: claim an attempt, hold its lease while
working, fetch the archive (checked against the sha256 the upload computed), read and decode
every image under the archive limits and the validation's deadline, and mark the dataset
`ready` with what it holds or `failed` with the reason. A worker that dies midway leaves a
lease that goes stale: housekeeping sends the validation again, up to max_attempts."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tass.contract.artifacts import ArtifactError
from tass.core.datasets import (
    ValidationClaim,
    claim_validation,
    record_validation,
    renew_validation,
)
from tass.core.db import DatabaseError
from tass.core.models import UploadedDataset
from tass.core.redaction import path_free, server_folders
from tass.trainer.errors import DataError
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)


class ValidationLease:
    """Renews the validation's lease every heartbeat_seconds while the archive is read."""

    def __init__(self, ctx: WorkerContext, dataset_id: str, attempt: int) -> None:
        self.ctx, self.dataset_id, self.attempt = ctx, dataset_id, attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"validation-heartbeat-{dataset_id}", daemon=True
        )

    def __enter__(self) -> ValidationLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        while not self._stop.wait(self.ctx.settings.heartbeat_seconds):
            try:
                with self.ctx.sessions.begin() as session:
                    held = renew_validation(session, self.dataset_id, self.attempt)
            except DatabaseError as exc:  # a DB blip: keep going, try again next beat
                log.warning("validation heartbeat for dataset %s failed: %s", self.dataset_id, exc)
                continue
            if not held:
                log.info("dataset %s: attempt %s lost its lease", self.dataset_id, self.attempt)
                return


def _inspect(
    ctx: WorkerContext, dataset: UploadedDataset, workdir: Path, deadline: float
) -> dict[str, Any]:
    from tass.trainer.data.describe import describe_archive  # imports TensorFlow

    local = workdir / f"archive.{dataset.archive_format}"
    ctx.store.download(dataset.key, local, dataset.sha256)
    return describe_archive(local, shown=dataset.name, deadline=deadline)


def _validate(
    ctx: WorkerContext, dataset: UploadedDataset, claim: ValidationClaim
) -> tuple[dict[str, Any] | None, str | None]:
    """(summary, None) or (None, the reason it failed)."""
    deadline = time.monotonic() + claim.seconds_left
    workdir = Path(tempfile.mkdtemp(prefix=f"tass-dataset-{dataset.id}-"))
    try:
        with ValidationLease(ctx, dataset.id, claim.attempt):
            return _inspect(ctx, dataset, workdir, deadline), None
    except DataError as exc:
        return None, str(exc)
    except ArtifactError as exc:
        return None, f"the stored archive cannot be read back: {exc}"
    except Exception as exc:  # anything else still ends the validation, with its reason
        log.exception("dataset %s: validation failed", dataset.id)
        return None, f"validation failed: {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_validate_dataset(ctx: WorkerContext, dataset_id: str) -> None:
    with ctx.sessions.begin() as session:
        claim = claim_validation(session, dataset_id, ctx.settings)
        if claim is None:
            log.info("dataset %s is not awaiting validation by this worker; skipping", dataset_id)
            return
        session.flush()  # the claim, before the row leaves the session
        dataset = session.get(UploadedDataset, dataset_id)
        assert dataset is not None
        session.expunge(dataset)
    summary, error = _validate(ctx, dataset, claim)
    if error is not None:
        error = path_free(error, server_folders(ctx.settings))
    with ctx.sessions.begin() as session:
        record_validation(session, dataset_id, summary, error, attempt=claim.attempt)
    log.info("dataset %s: %s", dataset_id, "ready" if error is None else f"failed: {error}")
