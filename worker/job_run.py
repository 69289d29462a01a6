"""The skeleton every job a worker runs shares (training, evaluation, and the distributed
members to come): claim the job, give it a workspace, capture its output into its log, hold
its lease while it runs, fail it on an error, and clean up whatever happens."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tass.core.job_lifecycle import job_deadline
from tass.core.models import Job
from tass.worker.claim import claim, fail
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.log_capture import capture_job_logs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRun:
    """A claimed attempt of a job while this worker runs it."""

    job: Job
    workdir: Path  # the attempt's own temporary folder, removed at the end
    lease: Lease  # renewed by its heartbeat thread; `lease.lost` once another owns the job


@contextlib.contextmanager
def run_claimed(
    ctx: WorkerContext,
    job_id: str,
    *,
    resumed_from_epoch: int | None = None,
    resumed_from_step: int | None = None,
    preempt: threading.Event | None = None,
) -> Iterator[JobRun | None]:
    """Claim the job and run the body inside its lease, its log capture and its workspace;
    yields None (and the body does nothing) when the job is not queued any more. An exception
    from the body fails the attempt with its message (the body's `return` ends nothing: it
    succeeds or stops the job itself); the workspace is removed in every case. `preempt` is
    set when the scheduler asks the job to stop (see Lease)."""
    job = claim(ctx, job_id, resumed_from_epoch, resumed_from_step)
    if job is None:
        log.info("job %s is not queued any more; skipping this delivery", job_id)
        yield None
        return
    log.info("job %s (attempt %s) claimed by %s", job_id, job.attempt, ctx.worker_id)
    workdir = Path(tempfile.mkdtemp(prefix=f"tass-{job_id}-"))
    deadline = job_deadline(job, ctx.settings)
    with capture_job_logs(ctx, job.id, job.attempt) as job_log:
        try:
            with Lease(ctx, job.id, job.attempt, deadline, preempt=preempt) as lease:
                yield JobRun(job, workdir, lease)
        except Exception as exc:
            fail(ctx, job, exc, job_log.sync)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
