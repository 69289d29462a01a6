"""Reading jobs, their metrics, artifacts and models: every query the API, the dashboard, the
metrics endpoint and the worker run to look at jobs (changes live in `job_lifecycle`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, Unpack

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from tass.contract.artifacts import CHECKPOINT_MODEL_KIND, key_folder, model_kind
from tass.contract.statuses import JobStatus
from tass.core.models import Artifact, Job, JobTransition, Metric, Model, Sweep, Worker
from tass.core.pagination import decode_cursor, encode_cursor


def get_job(session: Session, job_id: str, scope: str | None = None) -> Job | None:
    """The job, or None if it does not exist or belongs to a tenant other than `scope`."""
    job = session.get(Job, job_id)
    if job is None or (scope is not None and job.tenant != scope):
        return None
    return job


AnySelect: TypeAlias = Select[Unpack[tuple[Any, ...]]]  # a SELECT of any columns
_JOBS = Job.__table__
_TRANSITIONS = JobTransition.__table__


class JobSnapshot:
    """A job as `read_job` reads it for the API's status poll: the job row's columns as
    attributes (those of `Job`) and `transitions`, oldest first, as rows with the columns of
    `JobTransition`. Core rows, no ORM objects: building and tracking those cost more than
    the two queries themselves on the API's busiest path."""

    __slots__ = ("_row", "transitions")

    def __init__(self, row: Any, transitions: list[Any]) -> None:
        self._row = row
        self.transitions = transitions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def read_job(session: Session, job_id: str) -> JobSnapshot | None:
    """The job and its transitions (two queries), or None if it does not exist; whoever's it
    is (its `tenant` is for the caller to check)."""
    return read_jobs(session, [job_id]).get(job_id)


def read_jobs(session: Session, job_ids: list[str]) -> dict[str, JobSnapshot]:
    """Those of `job_ids` that exist, with their transitions: two queries however many."""
    if not job_ids:
        return {}
    rows = session.execute(select(_JOBS).where(_JOBS.c.id.in_(job_ids))).all()
    if not rows:
        return {}
    transitions: dict[str, list[Any]] = {row.id: [] for row in rows}
    for transition in session.execute(
        select(_TRANSITIONS)
        .where(_TRANSITIONS.c.job_id.in_(list(transitions)))
        .order_by(_TRANSITIONS.c.id)
    ):
        transitions[transition.job_id].append(transition)
    return {row.id: JobSnapshot(row, transitions[row.id]) for row in rows}


def job_visible(session: Session, job_id: str, scope: str | None = None) -> bool:
    """Whether the job exists and `scope` (a tenant, None for all) may see it: one query."""
    tenant = session.scalar(select(_JOBS.c.tenant).where(_JOBS.c.id == job_id))
    return tenant is not None and (scope is None or tenant == scope)


def list_job_ids_of_tenant(session: Session, tenant: str, job_ids: list[str]) -> set[str]:
    """Which of `job_ids` belong to `tenant`."""
    if not job_ids:
        return set()
    rows = session.scalars(select(Job.id).where(Job.id.in_(job_ids), Job.tenant == tenant))
    return set(rows)


def list_job_ids(
    session: Session,
    *,
    limit: int,
    cursor: str | None = None,
    status: str | None = None,
    job_type: str | None = None,
    scope: str | None = None,
    tag: tuple[str, str] | None = None,
    sweep_id: str | None = None,
) -> tuple[list[str], str | None]:
    """The ids of one page of jobs, newest first, with the next page's cursor: one query of
    two columns (the API renders the jobs from its read cache, `read_jobs` for the rest)."""
    stmt = select(Job.id, Job.created_at)
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
    rows = session.execute(newest_first(stmt, Job, limit, cursor)).all()
    page, next_cursor = _page(list(rows), limit)
    return [row.id for row in page], next_cursor


def newest_first_page(
    session: Session,
    stmt: Select[Any],
    entity: type[Model] | type[Sweep],
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """One page of `stmt` ordered newest first by (created_at, id), with the next cursor."""
    return _page(list(session.scalars(newest_first(stmt, entity, limit, cursor))), limit)


def newest_first(
    stmt: AnySelect,
    entity: type[Job] | type[Model] | type[Sweep],
    limit: int,
    cursor: str | None,
) -> AnySelect:
    """`stmt` after `cursor`, newest first by (created_at, id), one row past `limit`."""
    if cursor:
        at, row_id = decode_cursor(cursor)
        stmt = stmt.where(
            or_(entity.created_at < at, and_(entity.created_at == at, entity.id < row_id))
        )
    return stmt.order_by(entity.created_at.desc(), entity.id.desc()).limit(limit + 1)


def _page(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """At most `limit` of `rows` (read one past it), and the cursor after them if more remain."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id)


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
    for step, name, value in session.execute(  # plain rows: ORM objects cost more than the query
        select(Metric.step, Metric.name, Metric.value).where(
            Metric.job_id == job_id, Metric.kind == kind, Metric.step.in_(kept)
        )
    ):
        values[step][name] = value
    return [(step, values[step]) for step in kept], next_after


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


def job_artifacts(session: Session, job_id: str) -> list[Artifact]:
    return list(
        session.scalars(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.id))
    )


def model_artifact(session: Session, model_id: str, fmt: str) -> Artifact | None:
    return session.scalar(
        select(Artifact)
        .where(Artifact.model_id == model_id, Artifact.kind == model_kind(fmt))
        .order_by(Artifact.id.desc())
        .limit(1)
    )


def job_status(session: Session, job_id: str) -> str | None:
    return session.scalar(select(Job.status).where(Job.id == job_id))


def model_of_job(session: Session, job_id: str) -> Model | None:
    """The model a train job published (an earlier attempt may have published it)."""
    return session.scalar(select(Model).where(Model.job_id == job_id))


def reported_steps_per_epoch(session: Session, job_id: str) -> int | None:
    """The epoch length (in steps) the job's trainer last reported, if it reported one."""
    progress = session.scalar(select(Job.progress).where(Job.id == job_id)) or {}
    steps = progress.get("steps_per_epoch") if isinstance(progress, dict) else None
    return int(steps) if steps else None


def latest_checkpoint_files(session: Session, job_id: str) -> list[Artifact]:
    """The recorded files of the job's newest checkpoint (empty when there is none)."""
    newest = session.scalar(
        select(Artifact)
        .where(Artifact.job_id == job_id, Artifact.kind == CHECKPOINT_MODEL_KIND)
        .order_by(Artifact.epoch.desc(), Artifact.id.desc())
        .limit(1)
    )
    if newest is None:
        return []
    folder = key_folder(newest.key)
    return list(
        session.scalars(
            select(Artifact).where(
                Artifact.job_id == job_id,
                Artifact.epoch == newest.epoch,
                Artifact.key.startswith(folder, autoescape=True),
            )
        )
    )


# What the Prometheus collector reads at each scrape.


def job_counts(session: Session) -> list[tuple[str, str, str, int]]:
    """(type, status, queue, number of jobs) for every combination that has jobs."""
    rows = session.execute(
        select(Job.type, Job.status, Job.queue, func.count()).group_by(
            Job.type, Job.status, Job.queue
        )
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


@dataclass(frozen=True)
class JobTimes:
    type: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_times(session: Session) -> list[JobTimes]:
    rows = session.execute(select(Job.type, Job.created_at, Job.started_at, Job.finished_at))
    return [JobTimes(*row) for row in rows]


def running_progress(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """(job id, progress) of every running job."""
    rows = session.execute(
        select(Job.id, Job.progress).where(Job.status == JobStatus.RUNNING.value)
    )
    return [(job_id, progress or {}) for job_id, progress in rows]


def requeue_count(session: Session) -> int:
    """How many times a running job was put back in the queue (worker lost or shut down)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(JobTransition)
            .where(
                JobTransition.status == JobStatus.QUEUED.value,
                JobTransition.from_status == JobStatus.RUNNING.value,
            )
        )
        or 0
    )


def worker_sightings(session: Session) -> list[tuple[datetime, datetime | None]]:
    """(last seen, stopped at) of every worker the registry knows."""
    rows = session.execute(select(Worker.last_seen_at, Worker.stopped_at))
    return [(last, stopped) for last, stopped in rows]
