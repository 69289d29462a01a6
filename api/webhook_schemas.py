"""Request and response models of /v1/webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tass.api.pagination import Items, Page
from tass.api.schemas import InputModel
from tass.contract.spec import SingleLine

EventType = Literal[
    "job.started",
    "job.preempted",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "sweep.succeeded",
    "sweep.failed",
    "sweep.cancelled",
]


class WebhookCreate(InputModel):
    url: SingleLine = Field(
        min_length=1,
        max_length=2048,
        description="http(s) URL the events are POSTed to. It must resolve to public "
        "addresses only (or into TASS_WEBHOOK_ALLOW_NETWORKS); it is not contacted now.",
    )
    events: list[EventType] = Field(min_length=1, max_length=16)
    description: str | None = Field(None, max_length=500, pattern=r"^[^\x00]*$")


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The Standard Webhooks signing secret (whsec_...). Shown only now."
    )


class WebhookList(Items[WebhookOut]):
    pass


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None


class DeliveryPage(Page[DeliveryOut]):
    pass
