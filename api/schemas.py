"""Request and response models. Input models accept only client-owned fields."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tass.api.pagination import Page
from tass.contract.progress import JobProgress
from tass.contract.spec import DatasetSpec, SingleLine, TrainSpec
from tass.core.registry import NAME_PATTERN

Tags = Annotated[
    dict[
        Annotated[SingleLine, Field(min_length=1, max_length=64)],
        Annotated[SingleLine, Field(max_length=256)],
    ],
    Field(max_length=32, description="Free-form labels, at most 32."),
]


class InputModel(BaseModel):
    """A request body: unknown fields are refused, and so are numbers sent as strings or
    booleans (`"epochs": "1"`, `"epochs": true`) and booleans sent as anything else; a float
    field still takes a JSON integer (`"width": 1`)."""

    model_config = ConfigDict(extra="forbid", strict=True)


PriorityName = Literal["low", "normal", "high", "urgent"]
POOL_PATTERN = r"^[A-Za-z0-9_.-]+$"


class JobResources(InputModel):
    """What a job runs on (README "Scheduling")."""

    gpus: int = Field(0, ge=0, le=64, description="GPUs per worker; 0 runs on a CPU slot.")
    workers: int = Field(
        1,
        ge=1,
        le=1,
        description="Workers training the job together (multi-worker training is not "
        "available yet: 1).",
    )
    pool: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=POOL_PATTERN,
        description="Only workers of this pool (`tass worker --pool`); default: any.",
    )


class SchedulingFields(InputModel):
    """The scheduling fields every job (and a sweep, for its trials) may set."""

    priority: PriorityName = Field(
        "normal",
        description="Scheduling class; a higher one is placed first and may preempt a lower "
        "one. Tenants may use up to `high` unless an admin raises their `max_priority`.",
    )
    resources: JobResources = Field(default_factory=JobResources)


class TrainJobCreate(SchedulingFields):
    type: Literal["train"]
    spec: TrainSpec = Field(default_factory=TrainSpec)
    dataset: DatasetSpec
    name: SingleLine | None = Field(None, max_length=200)
    tags: Tags = Field(default_factory=dict)
    register_as: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Register the trained model as the next version of this registry name.",
    )


class EvaluateJobCreate(SchedulingFields):
    type: Literal["evaluate"]
    model_id: SingleLine = Field(
        min_length=1, max_length=200, description="A model id, `NAME@ALIAS` or `NAME:VERSION`."
    )
    dataset: DatasetSpec
    name: SingleLine | None = Field(None, max_length=200)
    tags: Tags = Field(default_factory=dict)
    test_time_flip: bool = Field(
        False,
        description="Average each image's outputs with its mirror image's (test-time flip "
        "augmentation: twice the work, usually a point or so more accuracy on CIFAR-10).",
    )


JobCreate = Annotated[TrainJobCreate | EvaluateJobCreate, Field(discriminator="type")]


class TransitionOut(BaseModel):
    status: str
    at: datetime
    attempt: int
    reason: str | None = None
    resumed_from_epoch: int | None = Field(
        None, description="On a `running` transition: the checkpoint epoch this attempt resumed."
    )
    resumed_from_step: int | None = Field(
        None,
        description="On a `running` transition: the global step this run resumed from (after "
        "a preemption, the step it checkpointed at mid-epoch).",
    )
    details: dict[str, Any] | None = None


class JobOut(BaseModel):
    id: str
    type: str
    name: str | None
    status: str
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any] | None
    dataset: dict[str, Any]
    tags: dict[str, Any]
    model_id: str | None
    register_as: str | None = None
    worker: str | None = Field(None, description="`<worker node>/<pid>` running the job.")
    priority: PriorityName = "normal"
    resources: dict[str, Any] = Field(
        default_factory=lambda: {"gpus": 0, "workers": 1, "pool": None}
    )
    queue_position: int | None = Field(
        None, description="1-based place among the waiting jobs (null unless queued)."
    )
    pending_reason: str | None = Field(None, description="Why it waits (null unless queued).")
    placement: dict[str, Any] | None = Field(
        None, description="The worker, pool and devices the scheduler placed it on."
    )
    last_heartbeat_at: datetime | None = None
    progress: JobProgress | None
    metrics: dict[str, float]
    result: dict[str, Any] | None
    error: str | None
    transitions: list[TransitionOut]


class JobPage(Page[JobOut]):
    pass


class MetricRow(BaseModel):
    kind: Literal["epoch", "step"]
    step: int
    values: dict[str, float]


class MetricPage(Page[MetricRow]):
    pass


class ArtifactOut(BaseModel):
    format: str
    size: int
    sha256: str


class ArtifactRecord(BaseModel):
    kind: str
    epoch: int | None
    size: int
    sha256: str
    created_at: datetime
    model_id: str | None


class ModelOut(BaseModel):
    id: str
    job_id: str
    name: str | None
    created_at: datetime
    metrics: dict[str, Any]
    class_names: list[str] | None
    parent_model_id: str | None = Field(
        None, description="Fine-tuned models: the model it started from (spec.init_from)."
    )
    parent_sha256: str | None = Field(
        None, description="Fine-tuned models: the sha256 of the parent's .keras file it read."
    )
    artifacts: list[ArtifactOut]


class ModelPage(Page[ModelOut]):
    pass


class WorkerOut(BaseModel):
    name: str
    host: str
    queues: list[str]
    device: str
    gpus: list[str]
    started_at: datetime
    last_seen_at: datetime
    alive: bool
    current_jobs: list[str]
    pool: str = "default"
    slots: int = Field(1, description="Devices the scheduler places on: GPUs, or CPU slots.")
    draining: bool = Field(False, description="No new placements (an admin drained it).")


class QueueOut(BaseModel):
    name: str
    queued: int


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    queues: list[QueueOut]


class DrainOut(BaseModel):
    name: str
    draining: bool
    preempted: list[str] = Field(
        description="Jobs moved off it: train jobs asked to checkpoint and stop, placed jobs "
        "not started yet."
    )
