"""What a running job records besides its status: metrics, stored artifacts and, at the end of
a train job, its model. Every write here happens inside the transaction that renews the job's
lease or finishes it (see `job_lifecycle`), so a stale attempt never records anything."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.core.clock import database_now
from tass.core.job_queries import model_of_job
from tass.core.models import Artifact, Job, Metric, Model
from tass.core.objectstore import StoredObject
from tass.core.registry import register_trained_model
from tass.core.registry_mirror import record_mlflow_model

ARTIFACT_COLUMNS = ("job_id", "model_id", "kind", "key", "size", "sha256", "epoch")


def upsert_metrics(
    session: Session, job_id: str, kind: str, step: int, values: dict[str, float]
) -> None:
    """One row per metric at (job, kind, step): a retried write overwrites, never duplicates.
    `at` is the database's clock, the one `finished_at` and the transitions are read from."""
    now = database_now(session)
    rows = [
        {
            "job_id": job_id,
            "kind": kind,
            "step": step,
            "name": name,
            "value": float(value),
            "at": now,
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


def forget_metrics_after_checkpoint(
    session: Session, job_id: str, epoch: int, global_step: int | None
) -> None:
    """Metrics an earlier run wrote after the checkpoint this run resumes from (`epoch` epochs
    and `global_step` steps done; 0: none) describe training that is redone: drop them, so only
    one history remains. An unknown `global_step` keeps the step rows."""
    delete_metrics_after(session, job_id, "epoch", epoch)
    if epoch == 0 and not global_step:
        delete_metrics_after(session, job_id, "step", -1)
    elif global_step is not None:
        delete_metrics_after(session, job_id, "step", global_step)


def stored_artifact(
    stored: StoredObject,
    *,
    job_id: str,
    kind: str,
    model_id: str | None = None,
    epoch: int | None = None,
) -> Artifact:
    """The row recording `stored` (its key, size and digest) as a file of `job_id`."""
    return Artifact(
        job_id=job_id,
        model_id=model_id,
        kind=kind,
        key=stored.key,
        size=stored.size,
        sha256=stored.sha256,
        epoch=epoch,
    )


class ArtifactConflict(RuntimeError):
    """A key is already recorded with other bytes (keys are write-once: a bug, never a retry)."""


def record_artifacts(session: Session, artifacts: list[Artifact]) -> None:
    """Record stored objects. Keys are write-once and carry the attempt, so a row is never
    replaced; recording the same object again is a no-op (ON CONFLICT DO NOTHING), so a write
    retried after its commit's acknowledgement was lost (the epoch end's retry) succeeds. The
    same key with another digest is a bug and raises ArtifactConflict."""
    if not artifacts:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {column: getattr(artifact, column) for column in ARTIFACT_COLUMNS} for artifact in artifacts
    ]
    session.execute(insert(Artifact).values(rows).on_conflict_do_nothing(index_elements=["key"]))
    keys = [row["key"] for row in rows]
    recorded = {
        key: sha256
        for key, sha256 in session.execute(
            select(Artifact.key, Artifact.sha256).where(Artifact.key.in_(keys))
        )
    }
    for row in rows:
        if recorded.get(row["key"]) != row["sha256"]:
            raise ArtifactConflict(f"{row['key']} is already recorded with other bytes")


def record_model(
    session: Session,
    job: Job,
    metrics: dict[str, Any],
    class_names: list[str],
    uploads: dict[str, StoredObject],
    *,
    parent: tuple[str, str] | None = None,
    mlflow: tuple[str | None, str | None] = (None, None),
) -> Model:
    """The train job's model (the one an earlier attempt recorded before dying, else a new
    one), its uploaded files by artifact kind, and its `register_as` registration. The caller
    finishes the job in the same transaction and commits only if that succeeded. `parent`:
    the (model id, .keras sha256) a fine-tuned model started from; `mlflow`: the (run id,
    logged model id) of its MLflow run when the job was tracked."""
    model = model_of_job(session, job.id)
    if model is None:
        model = Model(
            job_id=job.id,
            tenant=job.tenant,
            name=job.name,
            metrics=metrics,
            class_names=list(class_names),
            parent_model_id=parent[0] if parent else None,
            parent_sha256=parent[1] if parent else None,
        )
        session.add(model)
    record_mlflow_model(model, *mlflow)
    session.flush()
    record_artifacts(
        session,
        [
            stored_artifact(obj, job_id=job.id, kind=kind, model_id=model.id)
            for kind, obj in uploads.items()
        ],
    )
    register_trained_model(session, job, model)
    return model
