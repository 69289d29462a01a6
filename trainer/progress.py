"""The progress events that `trainer.train.train` reports to its hook."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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
