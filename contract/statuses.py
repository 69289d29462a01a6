"""The statuses of jobs, sweeps and uploaded datasets, as the database stores them and the API
serves them. Which job transitions are allowed is core's (`tass.core.job_transitions`)."""

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


class SweepStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


SWEEP_FINAL_STATUSES = frozenset({SweepStatus.SUCCEEDED, SweepStatus.FAILED, SweepStatus.CANCELLED})


class DatasetStatus(str, Enum):
    """An uploaded dataset is `validating`, then `ready` or `failed`."""

    VALIDATING = "validating"
    READY = "ready"
    FAILED = "failed"
