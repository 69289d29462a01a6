"""A training attempt's TensorBoard folder, zipped and stored as its `tensorboard` artifact.
Best effort: a run whose event files cannot be stored still trains and publishes its model.

An attempt that is preempted stores its folder before it hands the job back; the segment that
resumes it starts from that zip's files (`restore_tensorboard`), so the attempt's newest zip
holds the event files of every segment (core/tensorboard_files.py)."""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path

from tass.core.job_results import record_artifacts, stored_artifact
from tass.core.models import Job
from tass.core.tensorboard_files import (
    TENSORBOARD_KIND,
    attempt_tensorboard_artifacts,
    tensorboard_key,
)
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024  # event files of one attempt; larger ones are not kept


def publish_tensorboard(ctx: WorkerContext, job: Job, log_dir: Path) -> None:
    """Zip `log_dir` (its `train/` and `validation/` runs) and record it as the attempt's
    next segment."""
    files = [p for p in log_dir.rglob("*") if p.is_file()] if log_dir.is_dir() else []
    if not files:
        return
    size = sum(p.stat().st_size for p in files)
    if size > MAX_BYTES:
        log.warning(
            "job %s: TensorBoard files (%d bytes) exceed %d: not kept", job.id, size, MAX_BYTES
        )
        return
    try:
        with ctx.sessions() as session:
            segment = len(attempt_tensorboard_artifacts(session, job.id, job.attempt)) + 1
        zipped = Path(shutil.make_archive(str(log_dir), "zip", log_dir))
        obj = ctx.store.put_file(tensorboard_key(job.id, job.attempt, segment), zipped)
        with ctx.sessions.begin() as session:
            record_artifacts(session, [stored_artifact(obj, job_id=job.id, kind=TENSORBOARD_KIND)])
    except Exception:  # the model matters more than its event files
        log.warning("job %s: TensorBoard files were not stored", job.id, exc_info=True)


def restore_tensorboard(ctx: WorkerContext, job: Job, log_dir: Path) -> None:
    """A resumed attempt: unpack the event files its earlier segments stored into `log_dir`
    (nothing when there are none; a zip that cannot be read is noted and skipped)."""
    with ctx.sessions() as session:
        stored = attempt_tensorboard_artifacts(session, job.id, job.attempt)
    if not stored:
        return
    latest = stored[-1]
    try:
        zipped = ctx.store.download(
            latest.key, log_dir.parent / "tensorboard-before.zip", latest.sha256
        )
        with zipfile.ZipFile(zipped.path) as archive:
            archive.extractall(log_dir)  # our own zip; extractall also refuses `..` members
        zipped.path.unlink()
    except Exception:
        log.warning("job %s: earlier TensorBoard files were not restored", job.id, exc_info=True)
