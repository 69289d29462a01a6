"""The trainer hook: writes progress (with the phase the job is in), per-step and per-epoch
metrics, uploads checkpoints, and tells the trainer to stop as soon as the job's lease is lost
(cancel, timeout, requeue)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from tass.contract.artifacts import checkpoint_key, checkpoint_kind
from tass.contract.progress import JobProgress, Phase, with_phase
from tass.core.db import DatabaseUnavailable
from tass.core.job_results import record_artifacts, stored_artifact, upsert_metrics
from tass.core.models import Artifact
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease

log = logging.getLogger(__name__)


class JobReporter:
    """Called by the trainer every batch: cheap unless a write is due."""

    def __init__(
        self,
        ctx: WorkerContext,
        lease: Lease,
        *,
        every_steps: int,
        progress: dict[str, Any] | None = None,
    ) -> None:
        self.ctx, self.lease, self.every_steps = ctx, lease, every_steps
        self.job_id = lease.job_id
        self.progress: dict[str, Any] = with_phase(progress, "loading")  # as last written
        self._last_write = 0.0

    def phase(self, phase: Phase) -> bool:
        """Show that the job moved on to `phase` (its last step and epoch kept); False once
        the lease is lost. A database blip costs this one write, not the job."""
        if self.lease.lost.is_set():
            return False
        progress = with_phase(self.progress, phase)
        try:
            if not self.lease.renew(progress=progress):
                return False
        except DatabaseUnavailable as exc:
            log.warning("phase write for job %s failed: %s", self.job_id, exc)
        self.progress = progress
        return True

    def __call__(self, progress: Any) -> bool:
        if self.lease.lost.is_set():
            return False
        if progress.kind == "epoch":
            return self._epoch_end(progress)
        due = progress.global_step % self.every_steps == 0
        if due or time.monotonic() - self._last_write > 5:
            self._last_write = time.monotonic()  # at most one try per 5 s while the DB is down
            try:
                return self._write(
                    progress,
                    kind="step",
                    step=progress.global_step,
                    values=_floats(progress.metrics),
                )
            except DatabaseUnavailable as exc:  # a DB blip costs one progress row, not the job
                log.warning("progress write for job %s failed: %s", self.job_id, exc)
        return True

    def _epoch_end(self, progress: Any) -> bool:
        artifacts = []
        if progress.checkpoint_path:
            artifacts = self._upload_checkpoint(Path(progress.checkpoint_path), progress.epoch)
        values = {k: v for k, v in _floats(progress.metrics).items() if k != "epoch"}
        # an epoch's metrics and checkpoint must land: retry through a database outage
        retrying = Retrying(
            retry=retry_if_exception_type(DatabaseUnavailable),
            wait=wait_exponential(multiplier=0.5, max=10),
            stop=stop_after_delay(self.ctx.settings.heartbeat_timeout_seconds * 5),
            reraise=True,
        )
        return retrying(
            self._write,
            progress,
            kind="epoch",
            step=progress.epoch,
            values=values,
            latest=values,
            artifacts=artifacts,
        )

    def _write(
        self,
        progress: Any,
        *,
        kind: str,
        step: int,
        values: dict[str, float],
        latest: dict[str, float] | None = None,
        artifacts: list[Artifact] | None = None,
    ) -> bool:
        extra: dict[str, Any] = {"progress": JobProgress.of(progress).model_dump()}
        if latest is not None:
            extra["latest_metrics"] = latest
        with self.ctx.sessions.begin() as session:
            if not self.lease.renew_in(session, **extra):
                return False  # nothing was written: the job is no longer ours
            upsert_metrics(session, self.job_id, kind, step, values)
            if artifacts:
                record_artifacts(session, artifacts)
        self.progress = extra["progress"]
        return True

    def _upload_checkpoint(self, folder: Path, epoch: int) -> list[Artifact]:
        return upload_checkpoint(self.ctx, self.job_id, self.lease.attempt, folder, epoch)


def upload_checkpoint(
    ctx: WorkerContext,
    job_id: str,
    attempt: int,
    folder: Path,
    epoch: int,
    *,
    global_step: int | None = None,
) -> list[Artifact]:
    """Upload every file of a checkpoint (an epoch's, or with `global_step` a mid-epoch one);
    the caller writes the rows afterwards, in the lease-fenced transaction, so no recorded
    checkpoint is ever incomplete."""
    stored = []
    for file in sorted(folder.iterdir()):
        key = checkpoint_key(job_id, attempt, epoch, file.name, global_step=global_step)
        obj = ctx.store.put_file(key, file)
        stored.append(
            stored_artifact(obj, job_id=job_id, kind=checkpoint_kind(file.name), epoch=epoch)
        )
    return stored


def _floats(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None
    }
