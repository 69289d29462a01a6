"""The progress events that `trainer.train.train` reports to its hook, the phase a job is in,
the snapshot of them that a job stores and the API serves (JobProgress), and how a duration
(an ETA) is written.

Pure (dataclasses and pydantic, no TensorFlow): the worker, the API and the client share it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from pydantic import BaseModel, Field

# What a running job is doing, in the order a training job goes through them: `loading` (its
# data, a checkpoint to resume from, the model to evaluate), `compiling` (building the model
# and tracing its first step), `training`, `evaluating` (a training job's test-time-flip
# validation, or an evaluation job) and `exporting` (writing and uploading the model files).
Phase = Literal["loading", "compiling", "training", "evaluating", "exporting"]
PHASES: tuple[Phase, ...] = get_args(Phase)
# how the CLI writes each phase (the dashboard has the same words in common.js)
PHASE_LABELS: dict[str, str] = {
    "loading": "loading data",
    "compiling": "compiling",
    "training": "training",
    "evaluating": "evaluating",
    "exporting": "exporting model",
}


@dataclass(frozen=True)
class Progress:
    """One progress report: every few steps (`kind="step"`) and at each epoch end."""

    kind: Literal["step", "epoch"]
    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based step within the epoch; == steps_per_epoch at epoch end
    steps_per_epoch: int
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)
    images_per_sec: float = 0.0
    gflops_per_sec: float = 0.0  # images_per_sec x training FLOPs per image (trainer.flops)
    eta_seconds: float | None = None
    checkpoint_path: str | None = None
    phase: Phase = "training"


class JobProgress(BaseModel):
    """Where a running job is: the worker stores it with every progress write, the API serves
    it as the job's `progress` (each field null until the trainer reports it)."""

    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps_per_epoch: int | None = None
    global_step: int | None = None
    images_per_sec: float | None = None
    gflops_per_sec: float | None = Field(
        None, description="Achieved training compute: images/s x training FLOPs per image."
    )
    eta_seconds: float | None = None
    phase: Phase | None = Field(
        None,
        description="What the job is doing: loading, compiling, training, evaluating or exporting.",
    )

    @classmethod
    def of(cls, progress: Progress) -> JobProgress:
        return cls.model_validate(progress, from_attributes=True)


def with_phase(progress: dict[str, object] | None, phase: Phase) -> dict[str, object]:
    """A stored progress snapshot (or none yet) moved on to `phase`, everything else kept."""
    return {**JobProgress.model_validate(progress or {}).model_dump(), "phase": phase}


def format_duration(seconds: float | None) -> str:
    """`45s`, `3m05s`, `1h02m`; `-` when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
