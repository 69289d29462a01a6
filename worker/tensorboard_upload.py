"""A training attempt's TensorBoard folder, zipped and stored as its `tensorboard` artifact.
Best effort: a run whose event files cannot be stored still trains and publishes its model."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from tass.core.job_results import record_artifacts, stored_artifact
from tass.core.models import Job
from tass.core.tensorboard_files import TENSORBOARD_KIND, tensorboard_key
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)

MAX_BYTES = 64 * 1024 * 1024  # event files of one attempt; larger ones are not kept


def publish_tensorboard(ctx: WorkerContext, job: Job, log_dir: Path) -> None:
    """Zip `log_dir` (its `train/` and `validation/` runs) and record it for the attempt."""
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
        zipped = Path(shutil.make_archive(str(log_dir), "zip", log_dir))
        obj = ctx.store.put_file(tensorboard_key(job.id, job.attempt), zipped)
        with ctx.sessions.begin() as session:
            record_artifacts(session, [stored_artifact(obj, job_id=job.id, kind=TENSORBOARD_KIND)])
    except Exception:  # the model matters more than its event files
        log.warning("job %s: TensorBoard files were not stored", job.id, exc_info=True)
