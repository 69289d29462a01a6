"""Webhooks on the database: registration, the outbox written in the same transaction as the
job or sweep change that causes an event, the claim of due rows by a deliverer, and the log of
every attempt. Delivery itself (HTTP, signatures) lives in worker/webhook_delivery.py."""

from __future__ import annotations

import base64
import random
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.orm import Session, aliased

from tass.contract.statuses import JobStatus, SweepStatus
from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.models import Job, Sweep, Webhook, WebhookDelivery, WebhookOutbox

JOB_EVENTS: dict[str, str] = {
    JobStatus.RUNNING: "job.started",
    JobStatus.PREEMPTED: "job.preempted",
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}
SWEEP_EVENTS: dict[str, str] = {
    SweepStatus.SUCCEEDED: "sweep.succeeded",
    SweepStatus.FAILED: "sweep.failed",
    SweepStatus.CANCELLED: "sweep.cancelled",
}

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_RETRY_DELAY_SECONDS = 3600.0
JOB_FIELDS = (
    "id",
    "type",
    "name",
    "status",
    "tenant",
    "attempt",
    "tags",
    "model_id",
    "sweep_id",
    "trial_number",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "result",
    "latest_metrics",
)
SWEEP_FIELDS = ("id", "name", "status", "tenant", "tags", "created_at", "finished_at", "best")


def current_time(session: Session) -> datetime:
    """The database's clock now: on PostgreSQL clock_timestamp(), not the transaction's start
    (a deliverer compares due times across its own short transactions)."""
    if session.get_bind().dialect.name == "postgresql":
        now = session.execute(select(func.clock_timestamp())).scalar_one()
        return now.astimezone(timezone.utc)
    return database_now(session)


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_webhook(
    session: Session, *, tenant: str, url: str, events: list[str], description: str | None
) -> Webhook:
    webhook = Webhook(
        tenant=tenant, url=url, events=events, description=description, secret=new_secret()
    )
    session.add(webhook)
    session.flush()
    return webhook


def get_webhook(session: Session, webhook_id: str, scope: str | None = None) -> Webhook | None:
    """The webhook; None when missing or (with a scope) another tenant's."""
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or (scope is not None and webhook.tenant != scope):
        return None
    return webhook


def count_webhooks(session: Session, tenant: str) -> int:
    """How many webhooks the tenant has, for the per-tenant cap. On PostgreSQL a lock per
    tenant (an advisory lock, held to the end of the transaction) is taken first, so two
    registrations of one tenant count one after the other and never both slip under the cap
    (SQLite serialises writing transactions anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        key = func.hashtext(f"tass-webhooks:{tenant}")
        session.execute(select(func.pg_advisory_xact_lock(key)))
    return session.scalar(select(func.count()).where(Webhook.tenant == tenant)) or 0


def list_webhooks(session: Session, scope: str | None, limit: int) -> list[Webhook]:
    stmt = select(Webhook).order_by(Webhook.created_at, Webhook.id).limit(limit)
    if scope is not None:
        stmt = stmt.where(Webhook.tenant == scope)
    return list(session.scalars(stmt))


def delete_webhook(session: Session, webhook: Webhook) -> None:
    """Delete the webhook with its pending events and its delivery log."""
    session.delete(webhook)


def list_deliveries(
    session: Session, webhook_id: str, limit: int, before: int | None = None
) -> list[WebhookDelivery]:
    """Attempts newest first; `before` continues from an attempt id."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if before is not None:
        stmt = stmt.where(WebhookDelivery.id < before)
    return list(session.scalars(stmt.order_by(WebhookDelivery.id.desc()).limit(limit)))


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _enqueue(session: Session, tenant: str, event_type: str, data: dict[str, Any]) -> int:
    """One outbox row per webhook of the tenant subscribed to the event; returns the count."""
    webhooks = session.scalars(select(Webhook).where(Webhook.tenant == tenant)).all()
    subscribed = [webhook for webhook in webhooks if event_type in webhook.events]
    if not subscribed:
        return 0
    now = current_time(session)
    payload = {"type": event_type, "timestamp": now.isoformat(), "data": data}
    for webhook in subscribed:
        session.add(
            WebhookOutbox(
                webhook_id=webhook.id,
                event_id=f"msg_{secrets.token_hex(16)}",
                event_type=event_type,
                subject=data["id"],
                payload=payload,
                status=PENDING,
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
    return len(subscribed)


def enqueue_job_event(session: Session, job_id: str, status: str) -> int:
    """Called by the job state machine inside its transaction: the job event for `status`, if
    any, goes to the outbox with the job as it now is (so it commits or rolls back with it)."""
    event_type = JOB_EVENTS.get(status)
    if event_type is None:
        return 0
    columns = [getattr(Job, name) for name in JOB_FIELDS]
    row = session.execute(select(*columns).where(Job.id == job_id)).one_or_none()
    if row is None:
        return 0
    data = {name: _json_value(value) for name, value in zip(JOB_FIELDS, row, strict=True)}
    return _enqueue(session, data["tenant"], event_type, data)


def enqueue_sweep_event(session: Session, sweep: Sweep) -> int:
    """The sweep's final event (succeeded, failed or cancelled), inside the caller's change."""
    event_type = SWEEP_EVENTS.get(sweep.status)
    if event_type is None:
        return 0
    session.flush()
    data = {name: _json_value(getattr(sweep, name)) for name in SWEEP_FIELDS}
    return _enqueue(session, sweep.tenant, event_type, data)


@dataclass(frozen=True)
class DueEvent:
    """A claimed outbox row with what sending it needs."""

    outbox_id: int
    webhook_id: str
    url: str
    secret: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    attempt: int


def claim_due(
    session: Session,
    *,
    limit: int,
    lease_seconds: float,
    per_webhook: int | None = None,
    skip_webhooks: Collection[str] = (),
) -> list[DueEvent]:
    """Claim pending rows that are due and are the oldest pending row of their webhook and
    subject (so one job's events arrive in order): each claim moves next_attempt_at past the
    lease, conditionally, so two deliverers never send the same attempt; a deliverer that dies
    mid-send leaves the row to be retried when the lease ends. At most `per_webhook` rows of
    any one webhook, and none of `skip_webhooks` (busy with attempts of this deliverer)."""
    now = current_time(session)
    earlier = aliased(WebhookOutbox)
    blocked = exists().where(
        and_(
            earlier.webhook_id == WebhookOutbox.webhook_id,
            earlier.subject == WebhookOutbox.subject,
            earlier.status == PENDING,
            earlier.id < WebhookOutbox.id,
        )
    )
    due = [WebhookOutbox.status == PENDING, WebhookOutbox.next_attempt_at <= now, ~blocked]
    if skip_webhooks:
        due.append(WebhookOutbox.webhook_id.not_in(sorted(skip_webhooks)))
    stmt = (
        select(WebhookOutbox, Webhook.url, Webhook.secret)
        .join(Webhook, Webhook.id == WebhookOutbox.webhook_id)
        .order_by(WebhookOutbox.next_attempt_at, WebhookOutbox.id)
        .limit(limit)
    )
    if per_webhook is None:
        stmt = stmt.where(*due)
    else:  # the oldest per_webhook due rows of each webhook
        rank = func.row_number().over(
            partition_by=WebhookOutbox.webhook_id,
            order_by=(WebhookOutbox.next_attempt_at, WebhookOutbox.id),
        )
        ranked = select(WebhookOutbox.id, rank.label("rank")).where(*due).subquery()
        stmt = stmt.join(ranked, ranked.c.id == WebhookOutbox.id).where(
            ranked.c.rank <= per_webhook
        )
    claimed = []
    lease_until = now + timedelta(seconds=lease_seconds)
    for row, url, secret in session.execute(stmt).all():
        won = changed_rows(
            session,
            update(WebhookOutbox)
            .where(
                WebhookOutbox.id == row.id,
                WebhookOutbox.status == PENDING,
                WebhookOutbox.attempts == row.attempts,
            )
            .values(next_attempt_at=lease_until, attempts=row.attempts + 1)
            .execution_options(synchronize_session=False),
        )
        if won == 1:
            claimed.append(
                DueEvent(
                    outbox_id=row.id,
                    webhook_id=row.webhook_id,
                    url=url,
                    secret=secret,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    payload=row.payload,
                    attempt=row.attempts + 1,
                )
            )
    return claimed


def retry_delay(attempt: int, first_seconds: float) -> float:
    """Exponential backoff with jitter after the `attempt`-th failure: about first_seconds,
    then doubling up to an hour, each delay drawn between half and all of its step."""
    step = min(first_seconds * 2 ** (attempt - 1), MAX_RETRY_DELAY_SECONDS)
    return step * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    latency_ms: float | None
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(
    session: Session,
    event: DueEvent,
    result: AttemptResult,
    *,
    first_retry_seconds: float,
    retry_for_seconds: float,
) -> str:
    """Log the attempt and settle the row: delivered, retried later, or failed for good once
    it has been retried for retry_for_seconds. Returns the row's new status."""
    row = session.get(WebhookOutbox, event.outbox_id)
    if row is None:  # the webhook was deleted meanwhile, with its outbox and log
        return DELIVERED
    now = current_time(session)
    session.add(
        WebhookDelivery(
            webhook_id=event.webhook_id,
            outbox_id=event.outbox_id,
            event_id=event.event_id,
            event_type=event.event_type,
            attempt=event.attempt,
            at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            error=result.error,
        )
    )
    if result.succeeded:
        row.status, row.delivered_at, row.last_error = DELIVERED, now, None
        return DELIVERED
    row.last_error = result.error or f"HTTP {result.status_code}"
    retry_at = now + timedelta(seconds=retry_delay(event.attempt, first_retry_seconds))
    if retry_at > row.created_at + timedelta(seconds=retry_for_seconds):
        row.status = FAILED
    else:
        row.next_attempt_at = retry_at
    return row.status


def prune_settled(session: Session, keep_seconds: float) -> int:
    """Delete delivered and given-up events created more than keep_seconds ago, with their
    attempts; returns how many events went."""
    cutoff = current_time(session) - timedelta(seconds=keep_seconds)
    old = select(WebhookOutbox.id).where(
        WebhookOutbox.status.in_((DELIVERED, FAILED)), WebhookOutbox.created_at < cutoff
    )
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.outbox_id.in_(old)))
    return changed_rows(session, delete(WebhookOutbox).where(WebhookOutbox.id.in_(old)))
