"""Request and response models of the model registry (/v1/registry)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from tass.api.pagination import Page
from tass.api.schemas import InputModel, Tags
from tass.contract.spec import SingleLine

MODEL_REF_DESCRIPTION = "A model id, `NAME@ALIAS` or `NAME:VERSION`."


class VersionCreate(InputModel):
    model_id: SingleLine = Field(min_length=1, max_length=200, description=MODEL_REF_DESCRIPTION)


class AliasSet(InputModel):
    version: int = Field(ge=1, le=999_999_999)


class RegisteredModelUpdate(InputModel):
    description: str | None = Field(None, max_length=5000)
    tags: Tags | None = None


class MlflowMirrorOut(BaseModel):
    """The version's copy in MLflow's model registry (with MLflow tracking on)."""

    status: Literal["pending", "mirrored", "failed"]
    version: str | None = Field(description="MLflow's version number, once mirrored.")
    tries: int
    error: str | None = Field(description="The last delivery's error, if it failed.")


class VersionOut(BaseModel):
    version: int
    model_id: str
    created_at: datetime
    metrics: dict[str, Any]
    job_id: str
    dataset: dict[str, Any]
    mlflow: MlflowMirrorOut | None = Field(
        None, description="Its mirror in MLflow's registry; null when its job was not tracked."
    )


class VersionCreated(BaseModel):
    name: str
    version: int
    model_id: str
    created: bool = Field(description="False when the model already was a version of the name.")


class AliasOut(BaseModel):
    name: str
    alias: str
    version: int
    model_id: str


class RegisteredModelSummary(BaseModel):
    name: str
    description: str | None
    tags: dict[str, Any]
    latest_version: int | None
    aliases: dict[str, int]
    created_at: datetime
    updated_at: datetime


class RegisteredModelPage(Page[RegisteredModelSummary]):
    pass


class RegisteredModelOut(RegisteredModelSummary):
    versions: list[VersionOut]
