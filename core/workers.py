"""The worker registry: each worker node's main process reports itself; the API lists them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.contract.statuses import JobStatus
from tass.core.clock import database_now
from tass.core.models import Job, Worker


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    pid: int
    queues: list[str]
    device: str
    gpus: list[str]
    pool: str = "default"
    slots: int = 1
    busy: int = 0  # job processes running a task now


def report_alive(session: Session, info: WorkerInfo) -> None:
    """Insert or refresh this node's row."""
    now = database_now(session)
    values = {
        "name": info.name,
        "host": info.host,
        "pid": info.pid,
        "queues": info.queues,
        "device": info.device,
        "gpus": info.gpus,
        "pool": info.pool,
        "slots": info.slots,
        "busy": info.busy,
        "last_seen_at": now,
        "stopped_at": None,
    }
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(Worker).values(started_at=now, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))


def set_draining(session: Session, name: str, draining: bool) -> bool:
    """An admin's drain flag: a draining worker gets no new placements. False: no such worker."""
    changed = session.execute(update(Worker).where(Worker.name == name).values(draining=draining))
    return bool(getattr(changed, "rowcount", 0))


def report_stopped(session: Session, name: str) -> None:
    session.execute(
        update(Worker).where(Worker.name == name).values(stopped_at=database_now(session))
    )


def list_workers(session: Session, alive_within: float) -> list[tuple[Worker, bool, list[str]]]:
    """Workers seen in the last day: (row, alive?, ids of the jobs it runs)."""
    now = database_now(session)
    rows = session.scalars(
        select(Worker).where(Worker.last_seen_at > now - timedelta(days=1)).order_by(Worker.name)
    ).all()
    running = session.execute(
        select(Job.id, Job.worker_id).where(
            Job.status.in_([JobStatus.RUNNING.value, JobStatus.CANCELLING.value])
        )
    ).all()
    result = []
    for worker in rows:
        alive = worker.stopped_at is None and _recent(worker.last_seen_at, now, alive_within)
        jobs = [job_id for job_id, owner in running if (owner or "").startswith(f"{worker.name}/")]
        result.append((worker, alive, jobs))
    return result


def queue_depths(session: Session, queues: list[str]) -> dict[str, int]:
    """Queued jobs per queue, from the database (the truth, whatever the broker holds)."""
    counts = dict(
        session.execute(
            select(Job.queue, func.count())
            .where(Job.status == JobStatus.QUEUED.value)
            .group_by(Job.queue)
        ).all()
    )
    return {name: int(counts.get(name, 0)) for name in {*queues, *counts}}


def _recent(seen: datetime, now: datetime, seconds: float) -> bool:
    return now - seen <= timedelta(seconds=seconds)
