"""Job statuses and the transitions the state machine allows."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # told to stop (SIGTERM, a spot notice, the scheduler), it checkpointed and goes back to
    # the queue on the same attempt: `preempted` then `queued`, in one transaction
    PREEMPTED = "preempted"


class JobType(str, Enum):
    TRAIN = "train"
    EVALUATE = "evaluate"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING, JobStatus.PREEMPTED}
)

# to-status -> the statuses it may be entered from; final statuses are never left.
ALLOWED_FROM: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED}),
    # requeued after a lost worker, or after a preemption checkpoint
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.PREEMPTED}),
    JobStatus.PREEMPTED: frozenset({JobStatus.RUNNING}),
    JobStatus.CANCELLING: frozenset({JobStatus.RUNNING}),
    JobStatus.SUCCEEDED: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELLING}),
    JobStatus.CANCELLED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLING}),
}
