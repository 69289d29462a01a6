"""ORM tables: jobs, their transitions, metrics, artifacts and the model registry."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any] | None]
    dataset: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_id: Mapped[str | None] = mapped_column(String(32))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    last_heartbeat_at: Mapped[datetime | None]
    progress: Mapped[dict[str, Any] | None]
    latest_metrics: Mapped[dict[str, Any] | None]
    result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), index=True
    )
    trial_number: Mapped[int | None] = mapped_column(Integer)
    register_as: Mapped[str | None] = mapped_column(String(100))
    # scheduling (core/scheduler_store.py): the class (core.scheduling.Priority), what it asks
    # for (null: one CPU slot in any pool), where it was placed (worker, pool, devices), since
    # when it waits, its place in the queue and why, and a preemption asked of its attempt
    priority: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    queued_at: Mapped[datetime | None]
    queue_position: Mapped[int | None] = mapped_column(Integer)
    pending_reason: Mapped[str | None] = mapped_column(Text)
    preempt_requested_at: Mapped[datetime | None]
    # the submit request's trace (W3C traceparent, TASS_OPENTELEMETRY): the scheduler publishes
    # the job's task inside it, so one trace runs from the POST into the worker
    trace_context: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    transitions: Mapped[list[JobTransition]] = relationship(
        order_by="JobTransition.id", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_jobs_created_id", "created_at", "id"),
        # one job per trial number: two deciders can never start the same trial twice
        Index("uq_jobs_sweep_trial", "sweep_id", "trial_number", unique=True),
    )


class JobTransition(Base):
    """One recorded status change; rows are only ever inserted."""

    __tablename__ = "job_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    attempt: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]


class Metric(Base):
    """One value at one epoch or step; the primary key makes a retried write an overwrite."""

    __tablename__ = "metrics"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    """A trained model in the registry, created by a successful training job."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), unique=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    class_names: Mapped[list[str] | None] = mapped_column(JSON)
    # lineage of a fine-tuned model (spec.init_from): the model it started from, and the
    # sha256 of that model's .keras file as the worker read it
    parent_model_id: Mapped[str | None] = mapped_column(String(32), index=True)
    parent_sha256: Mapped[str | None] = mapped_column(String(64))
    # the MLflow run that trained it and the model it logged there (None: not tracked)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64))
    mlflow_model_id: Mapped[str | None] = mapped_column(String(64))

    artifacts: Mapped[list[Artifact]] = relationship(lazy="selectin", order_by="Artifact.id")


class RegisteredModel(Base):
    """A tenant's model name in the registry: numbered versions (each one a trained model) and
    aliases that point at a version. Version numbers are handed out from `latest_version` and
    never reused."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("uq_registered_models_tenant_name", "tenant", "name", unique=True),)


class ModelVersion(Base):
    """Version N of a registered name: one trained model."""

    __tablename__ = "model_versions"

    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RegistryMirror(Base):
    """A registered version's copy in MLflow's model registry (core/registry_mirror.py):
    pending until the worker's housekeeping delivers it, then mirrored (with MLflow's version
    number) or failed (after its tries, with the last error)."""

    __tablename__ = "registry_mirrors"

    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    status: Mapped[str] = mapped_column(String(16))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime] = mapped_column(index=True)
    mlflow_version: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelAlias(Base):
    """A movable name for one version of a registered model (`NAME@ALIAS`)."""

    __tablename__ = "model_aliases"

    registered_model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["registered_model_id", "version"],
            ["model_versions.registered_model_id", "model_versions.version"],
            ondelete="CASCADE",
        ),
    )


class Artifact(Base):
    """A stored object: a checkpoint or a model file, with its size and digest."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str | None] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(1024), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobLogChunk(Base):
    """One shipped piece of a job attempt's output (core/job_logs.py): lines [first_line,
    first_line + line_count) of the job's log; `key` is None once dropped by the size cap."""

    __tablename__ = "job_log_chunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    first_line: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("uq_job_log_chunks_line", "job_id", "first_line", unique=True),
        Index("uq_job_log_chunks_seq", "job_id", "attempt", "seq", unique=True),
    )


class ApiKey(Base):
    """An API key: only the SHA-256 of its secret is stored; the prefix finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class DashboardSession(Base):
    """A dashboard login: the cookie holds a random token, only its SHA-256 is stored; it
    expires, logging out revokes it, and revoking its API key ends it too."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class IdempotencyKey(Base):
    """An `Idempotency-Key` a tenant sent with a submission, and the job it created."""

    __tablename__ = "idempotency_keys"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    body_sha256: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A worker node as it last reported itself (its main process upserts this row)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[str]] = mapped_column(JSON)
    device: Mapped[str] = mapped_column(String(8))
    gpus: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None]
    pool: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    slots: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Devices the scheduler may place jobs on: its GPUs, or `--slots` on a CPU worker."""
    busy: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Job processes of the node running a task as it last reported: a hung process of a job
    that was requeued (no placement any more) still holds its device."""
    draining: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TenantSettings(Base):
    """An admin's scheduling settings for a tenant (no row: the defaults)."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    max_priority: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    gpu_quota: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TenantUsage(Base):
    """A tenant's decayed device-seconds in a pool as of `updated_at` (its fair-share history)."""

    __tablename__ = "tenant_usage"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    pool: Mapped[str] = mapped_column(String(64), primary_key=True)
    usage: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchedulerLease(Base):
    """The one active scheduler: whoever holds the unexpired row schedules."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime]


class Sweep(Base):
    """A hyperparameter sweep: its trials are ordinary train jobs pointing back at it. The
    sweep row holds the request and the outcome; everything learned lives in the jobs."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    config: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    best: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)


class Webhook(Base):
    """A tenant's webhook endpoint: the events it wants and the Standard Webhooks signing
    secret (kept as is: the server must sign with it, so it cannot be stored hashed)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookOutbox(Base):
    """One event to deliver to one webhook, written in the transaction that caused it, so no
    event is lost to a crash; rows leave `pending` as `delivered` or, after a day, `failed`."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
        Index("ix_webhook_outbox_order", "webhook_id", "subject", "id"),
    )


class WebhookDelivery(Base):
    """One delivery attempt: when, the status code (None when no answer), latency, error."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    outbox_id: Mapped[int] = mapped_column(ForeignKey("webhook_outbox.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(40))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)


class UploadedDataset(Base):
    """An archive of class folders a tenant uploaded (POST /v1/datasets), stored once in the
    object store under `key`; a validation job moves it from `validating` to `ready` (with
    what it found in `summary`) or `failed` (with the reason in `error`)."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    archive_format: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    num_examples: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    validated_at: Mapped[datetime | None]
    # validation attempts so far (capped by max_attempts), when the first one started (the
    # deadline counts from it) and the validating worker's lease (core/datasets.py)
    validation_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    validation_started_at: Mapped[datetime | None]
    validation_heartbeat_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_datasets_tenant_created", "tenant", "created_at", "id"),)
