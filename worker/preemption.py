"""Preemption on a worker: a job told to stop checkpoints where it is and goes back to the queue.

Who tells whom: the worker's main process gets SIGTERM (Kubernetes draining a node, a spot
termination notice from `worker.spot_notice`, `tass up` stopping) and, in its warm shutdown,
sends SIGTERM on to each child running a train job (`tell_job_children_to_stop`). The child
(`stop_requests`) turns that signal into a flag the trainer reads after every batch: it writes a
checkpoint there, mid-epoch if need be, and `hand_back` records it and moves the job
`running -> preempted -> queued` on the same attempt (a preemption is not a failure and never
counts against TASS_MAX_ATTEMPTS); the scheduler places it again and another worker resumes it.
The scheduler asks the same of a running job it preempts for a higher class: the job's lease
sees `preempt_requested_at` within a heartbeat and sets the same flag (worker.lease).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tass.contract.artifacts import checkpoint_global_step
from tass.contract.statuses import JobType
from tass.core import job_lifecycle
from tass.core.db import SessionFactory
from tass.core.job_results import record_artifacts
from tass.core.models import Artifact, Job
from tass.core.reaper import running_jobs_held_by
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.reporter import upload_checkpoint

if TYPE_CHECKING:  # the trainer (TensorFlow) is imported only inside a job's process
    from tass.trainer.callbacks import StopCheckpoint

log = logging.getLogger(__name__)

STOP_SIGNAL = signal.SIGTERM
PREEMPTED_REASON = "worker told to stop"


@contextmanager
def stop_requests() -> Iterator[threading.Event]:
    """While a job runs in this (child) process, SIGTERM sets the event instead of killing it;
    the previous handler comes back afterwards. Outside the main thread nothing is installed."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested
        return

    def on_signal(_signum: int, _frame: object) -> None:
        requested.set()

    previous = signal.signal(STOP_SIGNAL, on_signal)
    try:
        yield requested
    finally:
        signal.signal(STOP_SIGNAL, previous)


def resume_point(files: list[Artifact], steps_per_epoch: int | None) -> tuple[int, int | None]:
    """(epochs done, global steps done) of the checkpoint whose recorded files are `files`:
    a mid-epoch checkpoint names its step; an epoch's is epochs x steps_per_epoch (None when
    the job never reported its epoch length)."""
    if not files:
        return 0, 0
    epoch = files[0].epoch or 0
    step = checkpoint_global_step(files[0].key)
    if step is not None:
        return epoch, step
    return epoch, epoch * steps_per_epoch if steps_per_epoch else None


def hand_back(ctx: WorkerContext, job: Job, lease: Lease, stopped_at: StopCheckpoint) -> bool:
    """Record the stop checkpoint and requeue the job as `preempted` on the same attempt, in
    one lease-fenced transaction. False when this attempt no longer holds the job (a cancel
    request or a takeover came first): nothing is recorded then. Queued again, the job has no
    placement: the scheduler places it on a live worker that is not draining or stopping."""
    artifacts = []
    if stopped_at.step_in_epoch:  # an epoch-end checkpoint was uploaded by the reporter already
        artifacts = upload_checkpoint(
            ctx,
            job.id,
            job.attempt,
            Path(stopped_at.path),
            stopped_at.epoch,
            global_step=stopped_at.global_step,
        )
    with ctx.sessions.begin() as session:
        if not lease.renew_in(session):
            return False
        record_artifacts(session, artifacts)
        if not job_lifecycle.preempt(
            session,
            job.id,
            job.attempt,
            step=stopped_at.global_step,
            epoch=stopped_at.epoch,
            reason=PREEMPTED_REASON,
        ):
            session.rollback()
            return False
    log.warning(
        "job %s preempted after step %s; handed back to the queue", job.id, stopped_at.global_step
    )
    return True


# The worker's main process


def parent_pid(pid: int) -> int | None:
    """The parent of process `pid` (Linux /proc), or None when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def child_pid(worker_id: str) -> int | None:
    """The pid in a worker id (`<node>/<pid>`) when that process is a child of this one."""
    tail = worker_id.rsplit("/", 1)[-1]
    if not tail.isdigit():
        return None
    pid = int(tail)
    return pid if parent_pid(pid) == os.getpid() else None


def tell_job_children_to_stop(factory: SessionFactory, node: str) -> set[str]:
    """Send SIGTERM to this node's children that run train jobs, which checkpoint and hand
    their job back; returns those jobs' ids. Evaluate jobs (no checkpoints) and jobs whose
    process is not a child of this one are left to the caller."""
    told = set()
    for job_id, job_type, worker_id in running_jobs_held_by(factory, f"{node}/"):
        pid = child_pid(worker_id)
        if job_type != JobType.TRAIN.value or pid is None:
            continue
        try:
            os.kill(pid, STOP_SIGNAL)
        except ProcessLookupError:
            continue
        log.info("asked job %s (process %s) to checkpoint and stop", job_id, pid)
        told.add(job_id)
    return told
