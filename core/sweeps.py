"""Sweeps on the database: create, read and cancel them, load their trials, and apply what
`core.sweep_decisions` decides (start trials as ordinary train jobs, stop the ones the pruner
stops, finish the sweep with its best trial)."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tass.contract.statuses import FINAL_STATUSES, JobStatus, JobType, SweepStatus
from tass.core.db import changed_rows
from tass.core.job_lifecycle import QueuedJob, count_active_jobs, create_job
from tass.core.job_queries import newest_first_page
from tass.core.job_transitions import transition
from tass.core.models import Job, Metric, Sweep, utcnow
from tass.core.settings import Settings
from tass.core.sweep_decisions import EpochValue, TrialRecord, decide
from tass.core.webhooks import enqueue_sweep_event

log = logging.getLogger(__name__)

STOPPED_EARLY_REASON = "stopped early by the sweep's pruner"
SWEEP_CANCELLED_REASON = "sweep cancelled"


def create_sweep(
    session: Session, *, tenant: str, name: str | None, config: dict[str, Any], tags: dict
) -> Sweep:
    """Insert a running sweep (validated by the caller); the caller commits."""
    sweep = Sweep(
        tenant=tenant,
        name=name,
        status=SweepStatus.RUNNING.value,
        config=config,
        tags=tags,
        created_at=utcnow(),
    )
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, sweep_id: str, scope: str | None = None) -> Sweep | None:
    """The sweep, or None if it does not exist or belongs to a tenant other than `scope`."""
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or (scope is not None and sweep.tenant != scope):
        return None
    return sweep


def list_sweeps(
    session: Session, *, limit: int, cursor: str | None = None, scope: str | None = None
) -> tuple[list[Sweep], str | None]:
    stmt = select(Sweep) if scope is None else select(Sweep).where(Sweep.tenant == scope)
    return newest_first_page(session, stmt, Sweep, limit=limit, cursor=cursor)


def get_dotted(spec: dict[str, Any], name: str) -> Any:
    value: Any = spec
    for part in name.split("."):
        value = (value or {}).get(part)
    return value


def with_params(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """`spec` with each (dotted) parameter set; nested dictionaries are copied, not shared."""
    result = dict(spec)
    for name, value in params.items():
        *parents, leaf = name.split(".")
        node = result
        for part in parents:
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[leaf] = value
    return result


def was_stopped_early(job: Job) -> bool:
    return any(t.reason == STOPPED_EARLY_REASON for t in job.transitions)


def trial_jobs(session: Session, sweep_id: str) -> list[Job]:
    return list(
        session.scalars(
            select(Job)
            .where(Job.sweep_id == sweep_id)
            .order_by(Job.trial_number)
            .execution_options(populate_existing=True)  # statuses change by conditional UPDATEs
        )
    )


def epoch_values(session: Session, job_ids: list[str], metric: str) -> dict[str, list[EpochValue]]:
    """Each job's per-epoch values of `metric`, in epoch order."""
    values: dict[str, list[EpochValue]] = defaultdict(list)
    if not job_ids:
        return values
    rows = session.scalars(
        select(Metric)
        .where(Metric.job_id.in_(job_ids), Metric.kind == "epoch", Metric.name == metric)
        .order_by(Metric.job_id, Metric.step)
    )
    for row in rows:
        values[row.job_id].append(EpochValue(row.step, row.value, row.at))
    return values


def trial_records(session: Session, sweep: Sweep) -> list[TrialRecord]:
    jobs = trial_jobs(session, sweep.id)
    metric = sweep.config["objective"]["metric"]
    curves = epoch_values(session, [job.id for job in jobs], metric)
    names = list(sweep.config["parameters"])
    return [
        TrialRecord(
            number=job.trial_number or 0,
            job_id=job.id,
            params={name: get_dotted(job.spec or {}, name) for name in names},
            status=job.status,
            stopped_early=was_stopped_early(job),
            epochs=tuple(curves.get(job.id, [])),
            finished_at=job.finished_at,
            model_id=job.model_id,
        )
        for job in jobs
    ]


def submit_trial(
    session: Session, sweep: Sweep, number: int, params: dict[str, Any], settings: Settings
) -> Job:
    """A trial is an ordinary train job of the sweep's tenant, tagged with its sweep."""
    config = sweep.config
    return create_job(
        session,
        job_type=JobType.TRAIN.value,
        tenant=sweep.tenant,
        queue=settings.train_queue,
        dataset=config["dataset"],
        spec=with_params(config["spec"], params),
        name=f"{sweep.name or 'sweep'}-trial-{number}",
        tags={**(sweep.tags or {}), "sweep": sweep.id, "trial": str(number)},
        sweep_id=sweep.id,
        trial_number=number,
        # the sweep's class and resources (api/sweep_schemas.py): each trial asks the same
        priority=int(config.get("priority", 1)),
        resources=config.get("resources"),
    )


def stop_trial(session: Session, job_id: str, reason: str) -> bool:
    """Cancel a queued trial at once; a running one goes to `cancelling` and its worker stops
    it within one batch (its metrics and checkpoints stay)."""
    return transition(
        session, job_id, JobStatus.CANCELLED, expected={JobStatus.QUEUED}, reason=reason
    ) or transition(session, job_id, JobStatus.CANCELLING, reason=reason)


def _locked_running_sweep(session: Session, sweep_id: str) -> Sweep | None:
    """The sweep row, locked against other deciders on PostgreSQL (SQLite serialises writers)."""
    stmt = select(Sweep).where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING.value)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)


def advance_sweep(session: Session, sweep_id: str, settings: Settings) -> list[QueuedJob]:
    """Decide and apply one step of a running sweep; returns the new trials (queued: the
    scheduler places them once the caller commits)."""
    sweep = _locked_running_sweep(session, sweep_id)
    if sweep is None:
        return []
    trials = trial_records(session, sweep)
    free_quota = settings.max_active_jobs_per_tenant - count_active_jobs(session, sweep.tenant)
    seed = int(sweep.id[:8], 16) + len(trials)
    decision = decide(sweep.config, trials, free_quota=free_quota, seed=seed)
    for job_id in decision.stop:
        if stop_trial(session, job_id, STOPPED_EARLY_REASON):
            log.info("sweep %s: stopped trial job %s early", sweep.id, job_id)
    started = []
    for number, params in decision.start:
        job = submit_trial(session, sweep, number, params, settings)
        started.append(QueuedJob.of(job))
    if decision.finish is not None:
        sweep.status = decision.finish
        sweep.finished_at = utcnow()
        sweep.best = decision.best
        if decision.best is None:
            sweep.error = "no trial finished with a value of the objective"
        enqueue_sweep_event(session, sweep)  # the webhook outbox, in this transaction
    return started


def advance_sweeps(factory: sessionmaker[Session], settings: Settings) -> list[QueuedJob]:
    """One housekeeping pass over every running sweep, each in its own transaction."""
    with factory() as session:
        sweep_ids = list(
            session.scalars(select(Sweep.id).where(Sweep.status == SweepStatus.RUNNING.value))
        )
    started: list[QueuedJob] = []
    for sweep_id in sweep_ids:
        with factory() as session:
            try:
                new = advance_sweep(session, sweep_id, settings)
                session.commit()
            except IntegrityError:  # another decider started the same trial first
                session.rollback()
                continue
        started.extend(new)
    return started


def cancel_sweep(session: Session, sweep: Sweep) -> bool:
    """Cancel a running sweep and its queued and running trials; False if already over.
    The status moves by a conditional UPDATE (only from `running`), so a sweep that its
    decider finished meanwhile keeps its final status and gets no second final event (on
    PostgreSQL the UPDATE waits for the decider's row lock, then sees its commit)."""
    won = changed_rows(
        session,
        update(Sweep)
        .where(Sweep.id == sweep.id, Sweep.status == SweepStatus.RUNNING.value)
        .values(status=SweepStatus.CANCELLED.value, finished_at=utcnow())
        .execution_options(synchronize_session=False),
    )
    session.refresh(sweep)
    if won != 1:
        return False
    enqueue_sweep_event(session, sweep)
    for job in trial_jobs(session, sweep.id):
        if JobStatus(job.status) not in FINAL_STATUSES:
            stop_trial(session, job.id, SWEEP_CANCELLED_REASON)
    return True
