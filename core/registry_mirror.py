"""Mirroring the model registry to MLflow's: a version registered in tass (POST
/v1/registry/{name}/versions or a job's `register_as`) whose model its training job logged to
MLflow gets a pending mirror row in the transaction that registers it. The worker delivers it
off the request path (worker/mlflow_registry.py: a registered model of the same name in
MLflow, a version pointing at the run's logged model), retrying a server that is down with
backoff, and records the outcome here: `mirrored` with MLflow's version number, or `failed`
with the last error once its tries are used up. Registering never waits for MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.core.clock import database_now
from tass.core.models import Model, RegisteredModel, RegistryMirror

PENDING, MIRRORED, FAILED = "pending", "mirrored", "failed"
MAX_TRIES = 8
CLAIM_SECONDS = 300  # a claimed row whose deliverer died is tried again after this
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class MirrorTask:
    """One pending version to deliver, with what MLflow needs to know about it."""

    registered_model_id: int
    version: int
    name: str
    tenant: str
    model_id: str
    job_id: str
    mlflow_run_id: str | None
    mlflow_model_id: str
    tries: int


def record_mlflow_model(model: Model, run_id: str | None, logged_model_id: str | None) -> None:
    """The MLflow run that trained `model` and the model it logged there (kept when a later
    attempt has none). The caller commits."""
    if logged_model_id:
        model.mlflow_run_id, model.mlflow_model_id = run_id, logged_model_id


def queue_mirror(session: Session, registered_model_id: int, version: int, model: Model) -> bool:
    """A pending mirror of a newly registered version, when its model was logged to MLflow
    (False otherwise: there is nothing in MLflow to point at). The caller commits."""
    if not model.mlflow_model_id:
        return False
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RegistryMirror)
        .values(
            registered_model_id=registered_model_id,
            version=version,
            model_id=model.id,
            status=PENDING,
            tries=0,
            next_try_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["registered_model_id", "version"])
    )
    return True


def claim_due_mirrors(session: Session, limit: int = 20) -> list[MirrorTask]:
    """Pending mirrors whose time has come, each counted as a try and put off by
    CLAIM_SECONDS so that no other worker delivers it meanwhile (rows another worker is
    claiming are skipped on PostgreSQL). The caller commits before delivering."""
    now = database_now(session)
    stmt = (
        select(RegistryMirror, RegisteredModel, Model)
        .join(RegisteredModel, RegisteredModel.id == RegistryMirror.registered_model_id)
        .join(Model, Model.id == RegistryMirror.model_id)
        .where(RegistryMirror.status == PENDING, RegistryMirror.next_try_at <= now)
        .order_by(RegistryMirror.next_try_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=RegistryMirror)
    tasks = []
    for mirror, registered, model in session.execute(stmt):
        mirror.tries += 1
        mirror.next_try_at = now + timedelta(seconds=CLAIM_SECONDS)
        mirror.updated_at = now
        tasks.append(
            MirrorTask(
                registered_model_id=registered.id,
                version=mirror.version,
                name=registered.name,
                tenant=registered.tenant,
                model_id=model.id,
                job_id=model.job_id,
                mlflow_run_id=model.mlflow_run_id,
                mlflow_model_id=str(model.mlflow_model_id),
                tries=mirror.tries,
            )
        )
    session.flush()
    return tasks


def _mirror_row(session: Session, task: MirrorTask) -> RegistryMirror | None:
    return session.get(RegistryMirror, (task.registered_model_id, task.version))


def record_mirrored(session: Session, task: MirrorTask, mlflow_version: str) -> None:
    mirror = _mirror_row(session, task)
    if mirror is not None:
        mirror.status, mirror.mlflow_version, mirror.error = MIRRORED, mlflow_version, None
        mirror.updated_at = database_now(session)


def record_mirror_failure(
    session: Session, task: MirrorTask, error: str, *, retry_in: float | None
) -> bool:
    """A delivery that failed: tried again after `retry_in` seconds, or `failed` for good
    when its tries are used up or `retry_in` is None (a refusal that retrying cannot change).
    Returns whether it gave up."""
    mirror = _mirror_row(session, task)
    if mirror is None:
        return True
    now = database_now(session)
    mirror.error, mirror.updated_at = error[:MAX_ERROR_CHARS], now
    if retry_in is None or mirror.tries >= MAX_TRIES:
        mirror.status = FAILED
        return True
    mirror.next_try_at = now + timedelta(seconds=retry_in)
    return False


def mirrors_of(session: Session, registered_model_id: int) -> dict[int, RegistryMirror]:
    """{version: its mirror} of a name's versions that have one."""
    rows = session.scalars(
        select(RegistryMirror).where(RegistryMirror.registered_model_id == registered_model_id)
    )
    return {row.version: row for row in rows}
