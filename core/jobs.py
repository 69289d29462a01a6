"""Creating and reading jobs, metrics and models (the API's side of the database)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.core.jobstore import record_transition
from tass.core.models import Artifact, IdempotencyKey, Job, Metric, Model, utcnow
from tass.core.pagination import decode_cursor, encode_cursor
from tass.core.states import ACTIVE_STATUSES, JobStatus


def create_job(
    session: Session,
    *,
    job_type: str,
    tenant: str,
    queue: str,
    dataset: dict[str, Any],
    spec: dict[str, Any] | None = None,
    model_id: str | None = None,
    name: str | None = None,
    tags: dict[str, str] | None = None,
    sweep_id: str | None = None,
    trial_number: int | None = None,
    register_as: str | None = None,
) -> Job:
    """Insert a queued job and its first transition; the caller commits, then enqueues."""
    job = Job(
        type=job_type,
        tenant=tenant,
        status=JobStatus.QUEUED.value,
        queue=queue,
        dataset=dataset,
        spec=spec,
        model_id=model_id,
        name=name,
        tags=tags or {},
        attempt=1,
        created_at=utcnow(),
        sweep_id=sweep_id,
        trial_number=trial_number,
        register_as=register_as,
    )
    session.add(job)
    session.flush()
    record_transition(
        session,
        job.id,
        JobStatus.QUEUED,
        from_status=None,
        attempt=job.attempt,
        reason="submitted",
        at=job.created_at,
    )
    return job


def get_job(session: Session, job_id: str, scope: str | None = None) -> Job | None:
    """The job, or None if it does not exist or belongs to a tenant other than `scope`."""
    job = session.get(Job, job_id)
    if job is None or (scope is not None and job.tenant != scope):
        return None
    return job


def find_idempotency_key(session: Session, tenant: str, key: str) -> IdempotencyKey | None:
    return session.get(IdempotencyKey, (tenant, key))


def forget_idempotency_key(session: Session, tenant: str, key: str) -> None:
    """Drop a key whose job never reached the queue, so a retry with it makes a fresh job."""
    session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.tenant == tenant, IdempotencyKey.key == key)
    )


def list_job_ids_of_tenant(session: Session, tenant: str, job_ids: list[str]) -> set[str]:
    """Which of `job_ids` belong to `tenant`."""
    if not job_ids:
        return set()
    rows = session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.tenant == tenant))
    return set(rows)


# the first key of the PostgreSQL advisory locks that serialize one tenant's quota checks
QUOTA_LOCK_CLASS = 0x7A55


def count_active_jobs(session: Session, tenant: str) -> int:
    """Queued, running and cancelling jobs of a tenant (what its quota counts).

    Callers count in order to insert, so the count holds the tenant's quota lock until the
    transaction ends: on PostgreSQL a transaction-scoped advisory lock per tenant (a concurrent
    submit waits here until this one commits its insert, so the quota is never overshot); on
    SQLite every writing transaction already holds the database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(QUOTA_LOCK_CLASS, func.hashtext(tenant))))
    active = [s.value for s in ACTIVE_STATUSES]
    return (
        session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant == tenant, Job.status.in_(active))
        )
        or 0
    )


def list_jobs(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    job_type: str | None = None,
    scope: str | None = None,
    tag: tuple[str, str] | None = None,
    sweep_id: str | None = None,
) -> tuple[list[Job], str | None]:
    stmt = select(Job)
    if sweep_id is not None:
        stmt = stmt.where(Job.sweep_id == sweep_id)
    if tag is not None:
        stmt = stmt.where(Job.tags[tag[0]].as_string() == tag[1])
    if scope is not None:
        stmt = stmt.where(Job.tenant == scope)
    if status:
        stmt = stmt.where(Job.status == status)
    if job_type:
        stmt = stmt.where(Job.type == job_type)
    return newest_first_page(session, stmt, Job, limit=limit, cursor=cursor)


def newest_first_page(
    session: Session,
    stmt: Select[Any],
    entity: type[Job] | type[Model],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of `stmt` ordered newest first by (created_at, id), with the next cursor."""
    if cursor:
        at, row_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(entity.created_at < at, and_(entity.created_at == at, entity.id < row_id))
        )
    order = (entity.created_at.desc(), entity.id.desc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)


def upsert_metrics(
    session: Session, job_id: str, kind: str, step: int, values: dict[str, float]
) -> None:
    """One row per metric at (job, kind, step): a retried write overwrites, never duplicates."""
    rows = [
        {
            "job_id": job_id,
            "kind": kind,
            "step": step,
            "name": name,
            "value": float(value),
            "at": utcnow(),
        }
        for name, value in values.items()
        if value is not None
    ]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Metric).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["job_id", "kind", "step", "name"],
        set_={"value": stmt.excluded.value, "at": stmt.excluded.at},
    )
    session.execute(stmt)


def delete_metrics_after(session: Session, job_id: str, kind: str, step: int) -> None:
    """Forget metrics past `step` (a resumed attempt rewrites them)."""
    session.execute(
        delete(Metric).where(Metric.job_id == job_id, Metric.kind == kind, Metric.step > step)
    )


def metric_rows(
    session: Session,
    job_id: str,
    *,
    kind: str,
    after: int = -1,
    limit: int = 1000,
    every: int = 1,
) -> tuple[list[tuple[int, dict[str, float]]], int | None]:
    """Metric rows grouped by step, ascending, after step `after`; keeps every `every`-th step."""
    steps = list(
        session.scalars(
            select(Metric.step)
            .where(Metric.job_id == job_id, Metric.kind == kind, Metric.step > after)
            .group_by(Metric.step)
            .order_by(Metric.step)
            .limit(limit * every + 1)
        )
    )
    more = len(steps) > limit * every
    steps = steps[: limit * every]
    kept = steps[every - 1 :: every] if every > 1 else steps
    next_after = steps[-1] if more and steps else None
    if not kept:
        return [], next_after
    values: dict[int, dict[str, float]] = {step: {} for step in kept}
    for metric in session.scalars(
        select(Metric).where(Metric.job_id == job_id, Metric.kind == kind, Metric.step.in_(kept))
    ):
        values[metric.step][metric.name] = metric.value
    return [(step, values[step]) for step in kept], next_after


def count_metric_rows(session: Session, job_id: str, kind: str) -> int:
    return (
        session.scalar(
            select(func.count(func.distinct(Metric.step))).where(
                Metric.job_id == job_id, Metric.kind == kind
            )
        )
        or 0
    )


def get_model(session: Session, model_id: str, scope: str | None = None) -> Model | None:
    """The model, or None if it does not exist or belongs to a tenant other than `scope`."""
    model = session.get(Model, model_id)
    if model is None or (scope is not None and model.tenant != scope):
        return None
    return model


def list_models(
    session: Session, *, limit: int, cursor: str | None = None, scope: str | None = None
) -> tuple[list[Model], str | None]:
    stmt = select(Model) if scope is None else select(Model).where(Model.tenant == scope)
    return newest_first_page(session, stmt, Model, limit=limit, cursor=cursor)


def record_artifacts(session: Session, artifacts: list[Artifact]) -> None:
    """Record stored objects. Keys are write-once and carry the attempt, so a row is never
    replaced: a key recorded twice is a bug and fails on the unique constraint."""
    session.add_all(artifacts)


def job_artifacts(session: Session, job_id: str) -> list[Artifact]:
    return list(
        session.scalars(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.id))
    )


def model_artifact(session: Session, model_id: str, fmt: str) -> Artifact | None:
    return session.scalar(
        select(Artifact)
        .where(Artifact.model_id == model_id, Artifact.kind == f"model-{fmt}")
        .order_by(Artifact.id.desc())
        .limit(1)
    )
