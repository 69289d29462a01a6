"""The job lifecycle, in one place: submit (idempotency, quota, insert), enqueue (which queue,
task and task id), claim, heartbeat, finish, cancel, and the deadline every job runs under.

The API submits and cancels, the worker claims, heartbeats and finishes, housekeeping reaps
(`core.reaper`, built on the deadline and `QueuedJob` here), and the scheduler places queued
jobs (`core.scheduler_store`, `worker.scheduler`). Every status
change goes through `core.job_transitions.transition` (one conditional UPDATE, recorded)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tass.contract.statuses import ACTIVE_STATUSES, JobStatus, JobType
from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.errors import DomainError
from tass.core.job_transitions import record_transition, transition
from tass.core.models import IdempotencyKey, Job, utcnow
from tass.core.queue import EVALUATE_TASK, TRAIN_TASK, node_queue
from tass.core.redaction import path_free
from tass.core.registry import resolve_model_ref
from tass.core.settings import Settings
from tass.core.tracing import current_trace_context

log = logging.getLogger(__name__)

TIMEOUT_REASON = "timeout"
MAX_ERROR_CHARS = 4000
# the first key of the PostgreSQL advisory locks that serialize one tenant's quota checks
QUOTA_LOCK_CLASS = 0x7A55


class QuotaExceeded(DomainError):
    """The tenant already has as many queued or running jobs as it may (429: retry later)."""

    status_code = 429
    retry_after = 30

    def __init__(self, tenant: str, active: int, limit: int) -> None:
        super().__init__(
            f"tenant {tenant!r} already has {active} queued or running jobs (limit {limit})"
        )


class IdempotencyConflict(DomainError):
    """An Idempotency-Key sent again with a different request body."""

    status_code = 409


# Submit


@dataclass(frozen=True)
class NewJob:
    """What a submission asks for; `model_ref` (evaluate) is resolved at submit time, so the
    job records the model the reference names now, not the reference."""

    job_type: JobType
    tenant: str
    dataset: dict[str, Any]
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    spec: dict[str, Any] | None = None
    model_ref: str | None = None
    register_as: str | None = None
    priority: int = 1  # core.scheduling.Priority.NORMAL
    resources: dict[str, Any] | None = None


@dataclass(frozen=True)
class Submission:
    job: Job
    replayed: bool  # an earlier submission with the same Idempotency-Key made it


def submit(
    session: Session,
    new: NewJob,
    settings: Settings,
    *,
    scope: str | None,
    idempotency_key: str | None = None,
    body_sha256: str = "",
) -> Submission:
    """Store a job (or find the one this Idempotency-Key made); the caller commits, and the
    job then waits in the database until the scheduler places it. Raises QuotaExceeded,
    IdempotencyConflict, or core.registry.ModelRefNotFound."""
    if idempotency_key:
        record = session.get(IdempotencyKey, (new.tenant, idempotency_key))
        if record is not None:
            return _replay(session, record, body_sha256)
    check_quota(session, new.tenant, settings.max_active_jobs_per_tenant)
    if not idempotency_key:
        job = _insert_new_job(session, new, settings, scope)
        session.flush()
        return Submission(job, replayed=False)
    try:
        with session.begin_nested():  # a savepoint: a lost race leaves the transaction usable
            job = _insert_new_job(session, new, settings, scope)
            session.add(
                IdempotencyKey(
                    tenant=new.tenant, key=idempotency_key, body_sha256=body_sha256, job_id=job.id
                )
            )
    except IntegrityError:  # a concurrent request with the same key won the insert
        record = session.get(IdempotencyKey, (new.tenant, idempotency_key))
        if record is None:
            raise RuntimeError(
                "the Idempotency-Key insert conflicted, yet no key is stored"
            ) from None
        return _replay(session, record, body_sha256)
    return Submission(job, replayed=False)


def _replay(session: Session, record: IdempotencyKey, body_sha256: str) -> Submission:
    if record.body_sha256 != body_sha256:
        raise IdempotencyConflict("Idempotency-Key was already used with a different request body")
    job = session.get(Job, record.job_id)
    if job is None:  # the key row cascades with its job, so this cannot happen
        raise RuntimeError(f"Idempotency-Key names job {record.job_id}, which does not exist")
    return Submission(job, replayed=True)


def _insert_new_job(session: Session, new: NewJob, settings: Settings, scope: str | None) -> Job:
    model_id = None
    if new.model_ref is not None:
        model_id = resolve_model_ref(session, new.model_ref, tenant=new.tenant, scope=scope).id
    return create_job(
        session,
        job_type=new.job_type.value,
        tenant=new.tenant,
        queue=queue_for(new.job_type.value, settings),
        dataset=new.dataset,
        spec=new.spec,
        model_id=model_id,
        name=new.name,
        tags=new.tags,
        register_as=new.register_as,
        priority=new.priority,
        resources=new.resources,
        trace_context=current_trace_context() if settings.opentelemetry else None,
    )


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
    priority: int = 1,
    resources: dict[str, Any] | None = None,
    trace_context: dict[str, Any] | None = None,
) -> Job:
    """Insert a queued job and its first transition; the caller commits. The scheduler
    (worker.scheduler) places it on a worker."""
    now = utcnow()
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
        created_at=now,
        queued_at=now,
        priority=priority,
        resources=resources,
        trace_context=trace_context,
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


def check_quota(session: Session, tenant: str, limit: int) -> None:
    """Raise QuotaExceeded when the tenant may not add a job (sweep trials count too)."""
    active = count_active_jobs(session, tenant)
    if active >= limit:
        raise QuotaExceeded(tenant, active, limit)


# Dispatch: the scheduler (worker.scheduler) places a queued job, then sends it to its worker


class TaskSender(Protocol):
    """What dispatching needs of a Celery app (the worker's app, which runs the scheduler)."""

    def send_task(self, name: str, *, args: list[Any], queue: str, task_id: str) -> Any: ...


@dataclass(frozen=True)
class QueuedJob:
    """A job that is `queued` again in the database (the scheduler places it)."""

    job_id: str
    job_type: str
    queue: str
    attempt: int

    @classmethod
    def of(cls, job: Job) -> QueuedJob:
        return cls(job.id, job.type, job.queue, job.attempt)


def queue_for(job_type: str, settings: Settings) -> str:
    """The queue label recorded on a new job of `job_type` (the scheduler's pools decide where
    it runs; the label names its kind of work in listings and metrics)."""
    return settings.train_queue if job_type == JobType.TRAIN.value else settings.evaluate_queue


def dispatch(sender: TaskSender, job_id: str, job_type: str, attempt: int, worker: str) -> bool:
    """Send one placed attempt to its worker's own queue: the task runs it by type, the task id
    names the attempt (a re-send is recognisably the same delivery). False when the broker
    refused it (the scheduler re-sends an unclaimed placement later)."""
    task = TRAIN_TASK if job_type == JobType.TRAIN.value else EVALUATE_TASK
    try:
        sender.send_task(
            task, args=[job_id], queue=node_queue(worker), task_id=f"{job_id}-{attempt}"
        )
    except (BrokerError, OSError):
        log.error("could not send job %s to worker %s; re-sent later", job_id, worker)
        return False
    return True


# Claim, heartbeat, finish, cancel


def claim(
    session: Session,
    job_id: str,
    worker_id: str,
    resumed_from_epoch: int | None = None,
    resumed_from_step: int | None = None,
) -> Job | None:
    """queued -> running with one conditional UPDATE, only by a process of the worker node the
    scheduler placed the job on (`worker_id` is `<node>/<pid>`); None if the job is placed
    elsewhere or not at all, or is no longer queued (cancelled, already running under a live
    lease, or finished). The job returned is detached from the session. A resumed run's
    transition says where it resumed: `resumed_from_epoch` (epochs done) and
    `resumed_from_step` (global steps done)."""
    node = worker_id.rsplit("/", 1)[0]
    now = database_now(session)  # leases and deadlines run on the database's clock
    won = transition(
        session,
        job_id,
        JobStatus.RUNNING,
        expected={JobStatus.QUEUED},
        reason="claimed",
        details={
            "worker": worker_id,
            **({"resumed_from_epoch": resumed_from_epoch} if resumed_from_epoch else {}),
            **({"resumed_from_step": resumed_from_step} if resumed_from_step else {}),
        },
        conditions=[Job.placement["worker"].as_string() == node],
        values={
            "worker_id": worker_id,
            # the deadline counts from the first start, across attempts
            "started_at": func.coalesce(Job.started_at, now),
            "last_heartbeat_at": now,
        },
    )
    if not won:
        return None
    job = session.scalar(select(Job).where(Job.id == job_id))
    if job is None:
        raise RuntimeError(f"job {job_id} vanished inside the transaction that claimed it")
    session.expunge(job)
    return job


def heartbeat(session: Session, job_id: str, attempt: int, **values: Any) -> bool:
    """Renew the lease (and write `values`) only while this attempt still runs the job: False
    once it was cancelled, timed out or handed to another attempt."""
    renewed = changed_rows(
        session,
        update(Job)
        .where(Job.id == job_id, Job.attempt == attempt, Job.status == JobStatus.RUNNING.value)
        .values(last_heartbeat_at=database_now(session), **values),
    )
    return renewed == 1


def preemption_requested(session: Session, job_id: str) -> bool:
    """Whether the scheduler asked this job's running attempt to checkpoint and stop."""
    return session.scalar(select(Job.preempt_requested_at).where(Job.id == job_id)) is not None


def finish(
    session: Session,
    job_id: str,
    attempt: int,
    status: JobStatus,
    *,
    reason: str | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """Move this attempt of the job to a final status (no-op if it already left running)."""
    return transition(
        session,
        job_id,
        status,
        expected={JobStatus.RUNNING, JobStatus.CANCELLING},
        attempt=attempt,
        reason=reason,
        values=values,
    )


def fail(session: Session, job_id: str, attempt: int, error: str) -> bool:
    """This attempt failed with `error` (kept to MAX_ERROR_CHARS, without server paths)."""
    values = {"error": path_free(error)[:MAX_ERROR_CHARS]}
    return finish(session, job_id, attempt, JobStatus.FAILED, reason="error", values=values)


def preempt(
    session: Session, job_id: str, attempt: int, *, step: int, epoch: int, reason: str
) -> bool:
    """This attempt was told to stop and checkpointed after global step `step` (`epoch` epochs
    done): running -> preempted (details: step, epoch) -> queued, on the same attempt, so a
    preemption never counts against max_attempts. False when the attempt no longer runs the
    job (cancel requested, timed out, taken over): nothing changes then. The caller commits;
    the scheduler places the job again, before later submissions (it keeps its place)."""
    if not transition(
        session,
        job_id,
        JobStatus.PREEMPTED,
        expected={JobStatus.RUNNING},
        attempt=attempt,
        reason=reason,
        details={"step": step, "epoch": epoch},
    ):
        return False
    return transition(
        session,
        job_id,
        JobStatus.QUEUED,
        expected={JobStatus.PREEMPTED},
        attempt=attempt,
        reason="preempted",
        details={"resume_from_step": step},
        values={"worker_id": None},
    )


def end_stopped(session: Session, job_id: str, attempt: int) -> bool:
    """A run stopped early: a cancel request ends as cancelled; a lost lease ends nothing
    (another attempt owns the job now)."""
    current = session.scalar(select(Job.status).where(Job.id == job_id))
    if current != JobStatus.CANCELLING.value:
        return False
    return transition(
        session,
        job_id,
        JobStatus.CANCELLED,
        attempt=attempt,
        reason="cancelled while running",
    )


def request_cancel(session: Session, job_id: str) -> bool:
    """A queued job is cancelled at once; a running one goes to `cancelling` (its worker
    stops it). False when the job is already final."""
    return transition(
        session, job_id, JobStatus.CANCELLED, expected={JobStatus.QUEUED}, reason="cancel requested"
    ) or transition(session, job_id, JobStatus.CANCELLING, reason="cancel requested")


# Deadlines: the one place that says how long a job may run and what happens after


def max_runtime(spec: dict[str, Any] | None, settings: Settings) -> float:
    """Seconds a job may run, from its first start, across attempts."""
    limit = (spec or {}).get("max_runtime_seconds")
    return float(limit or settings.default_max_runtime_seconds)


def job_deadline(job: Job, settings: Settings) -> datetime | None:
    """When the job must be over: its first start plus its max runtime."""
    if job.started_at is None:
        return None
    return job.started_at + timedelta(seconds=max_runtime(job.spec, settings))


def deadline_passed(job: Job, settings: Settings, now: datetime) -> bool:
    deadline = job_deadline(job, settings)
    return deadline is not None and now > deadline


def fail_past_deadline(session: Session, job_id: str, attempt: int, settings: Settings) -> bool:
    """Fail this attempt with reason `timeout` (which ends its lease). Called by the worker
    holding the lease and by the reaper, whichever notices first; the caller commits."""
    spec = session.scalar(select(Job.spec).where(Job.id == job_id))
    limit = max_runtime(spec, settings)
    return transition(
        session,
        job_id,
        JobStatus.FAILED,
        attempt=attempt,
        reason=TIMEOUT_REASON,
        values={"error": f"timeout: ran longer than max_runtime_seconds ({limit:.0f}s)"},
    )
