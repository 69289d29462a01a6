"""Request and response models of /v1/sweeps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tass.api.pagination import Page
from tass.api.schemas import InputModel, PriorityName, SchedulingFields, Tags
from tass.contract.spec import DatasetSpec, SingleLine, TrainSpec

ObjectiveMetric = Literal["val_accuracy", "val_loss", "accuracy", "loss"]


class ValuesParameter(InputModel):
    values: list[Any] = Field(
        min_length=1, max_length=100, description="The values to try (grid or sampled)."
    )


class RangeParameter(InputModel):
    distribution: Literal["uniform", "log_uniform", "int_uniform"]
    min: float
    max: float


class Objective(InputModel):
    metric: ObjectiveMetric = Field("val_accuracy", description="A per-epoch metric.")
    goal: Literal["maximize", "minimize"] = "maximize"


class EarlyStopping(InputModel):
    type: Literal["asha", "median"] = Field(
        description="asha: Optuna's SuccessiveHalvingPruner (asynchronous successive halving); "
        "median: Optuna's MedianPruner."
    )
    min_epochs: int = Field(1, ge=1, le=500, description="No trial is stopped before this epoch.")
    reduction_factor: int = Field(
        3, ge=2, le=10, description="asha: keep the top 1/eta at each rung (epochs r, r*eta, ...)."
    )
    startup_trials: int = Field(
        1, ge=0, le=100, description="median: trials that must finish before it stops any."
    )


class SweepCreate(SchedulingFields):
    """A sweep; `priority` and `resources` are every trial's."""

    name: SingleLine | None = Field(None, max_length=200)
    spec: TrainSpec = Field(default_factory=TrainSpec, description="The base spec of every trial.")
    dataset: DatasetSpec
    method: Literal["grid", "random", "tpe"] = "tpe"
    parameters: dict[str, ValuesParameter | RangeParameter] = Field(
        min_length=1,
        max_length=20,
        description="TrainSpec field names (dotted for nested ones, e.g. augmentation.translate).",
    )
    objective: Objective = Field(default_factory=Objective)
    max_trials: int = Field(ge=1, le=1000)
    max_parallel: int = Field(2, ge=1, le=100)
    early_stopping: EarlyStopping | None = None
    tags: Tags = Field(default_factory=dict)


class TrialOut(BaseModel):
    number: int
    job_id: str
    params: dict[str, Any]
    status: str
    stopped_early: bool
    best_value: float | None = Field(None, description="Best objective over its epochs.")
    final_value: float | None = Field(None, description="The objective at its last epoch.")
    epochs_run: int
    model_id: str | None


class BestOut(BaseModel):
    job_id: str
    model_id: str | None
    params: dict[str, Any]
    value: float | None
    number: int | None = None


class SweepOut(BaseModel):
    id: str
    name: str | None
    status: str
    created_at: datetime
    finished_at: datetime | None
    method: str
    parameters: dict[str, Any]
    objective: dict[str, Any]
    max_trials: int
    max_parallel: int
    early_stopping: dict[str, Any] | None
    spec: dict[str, Any]
    dataset: dict[str, Any]
    priority: PriorityName = "normal"
    resources: dict[str, Any] = Field(
        default_factory=lambda: {"gpus": 0, "workers": 1, "pool": None}
    )
    tags: dict[str, Any]
    trials: list[TrialOut]
    best: BestOut | None
    error: str | None


class SweepPage(Page[SweepOut]):
    pass
