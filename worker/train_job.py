"""A training job: claim, load data, train with progress and checkpoints, store the model."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from tass.core.datapaths import resolve_dataset_path
from tass.core.jobs import delete_metrics_after, record_artifacts
from tass.core.models import Artifact, Job, Model
from tass.core.reaper import job_deadline
from tass.core.registry import register_trained_model
from tass.core.states import JobStatus
from tass.trainer.spec import DatasetSpec, TrainSpec
from tass.worker.claim import claim, end_stopped, fail, finish
from tass.worker.context import WorkerContext
from tass.worker.lease import Lease
from tass.worker.reporter import JobReporter

log = logging.getLogger(__name__)


def load_job_dataset(ctx: WorkerContext, raw: dict) -> DatasetSpec:  # type: ignore[type-arg]
    """Re-check a server-side path against this worker's data roots before reading it."""
    spec = DatasetSpec.model_validate(raw)
    if spec.path is not None:
        path = resolve_dataset_path(spec.path, ctx.settings.resolved_data_roots)
        spec = spec.model_copy(update={"path": str(path)})
    return spec


def latest_stored_checkpoint(ctx: WorkerContext, job_id: str) -> list[Artifact]:
    """The recorded files of the job's newest checkpoint (empty when there is none)."""
    with ctx.sessions() as session:
        newest = session.scalar(
            select(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
            .order_by(Artifact.epoch.desc(), Artifact.id.desc())
            .limit(1)
        )
        if newest is None:
            return []
        folder = newest.key.rsplit("/", 1)[0] + "/"
        return list(
            session.scalars(
                select(Artifact).where(
                    Artifact.job_id == job_id,
                    Artifact.epoch == newest.epoch,
                    Artifact.key.startswith(folder, autoescape=True),
                )
            )
        )


def fetch_checkpoint(ctx: WorkerContext, files: list[Artifact], dest: Path) -> Path:
    """Download every recorded file of a checkpoint, each checked against its digest."""
    for artifact in files:
        name = artifact.key.rsplit("/", 1)[1]
        if ctx.store.download(artifact.key, dest / name) != artifact.sha256:
            raise RuntimeError(f"checkpoint {artifact.key}: sha256 mismatch")
    if not (dest / "state.json").exists():  # written before state files were recorded
        ctx.store.download(files[0].key.rsplit("/", 1)[0] + "/state.json", dest / "state.json")
    return dest


def forget_lost_progress(ctx: WorkerContext, job: Job, epoch: int) -> None:
    """Metrics that an earlier attempt wrote after its last checkpoint describe training that
    this attempt redoes: drop them so that only one history remains."""
    steps_per_epoch = (job.progress or {}).get("steps_per_epoch")
    with ctx.sessions.begin() as session:
        delete_metrics_after(session, job.id, "epoch", epoch)
        if epoch == 0:
            delete_metrics_after(session, job.id, "step", -1)
        elif steps_per_epoch:
            delete_metrics_after(session, job.id, "step", epoch * int(steps_per_epoch))


def run_train_job(ctx: WorkerContext, job_id: str) -> None:
    checkpoint = latest_stored_checkpoint(ctx, job_id)
    resumed_from = checkpoint[0].epoch if checkpoint else None
    job = claim(ctx, job_id, resumed_from_epoch=resumed_from)
    if job is None:
        log.info("job %s is not queued any more; skipping this delivery", job_id)
        return
    log.info("job %s (attempt %s) claimed by %s", job_id, job.attempt, ctx.worker_id)
    workdir = Path(tempfile.mkdtemp(prefix=f"tass-{job_id}-"))
    deadline = job_deadline(job, ctx.settings)
    try:
        with Lease(ctx, job.id, job.attempt, deadline) as lease:
            forget_lost_progress(ctx, job, resumed_from or 0)
            resume = None
            if checkpoint:
                resume = fetch_checkpoint(ctx, checkpoint, workdir / "resume")
                log.info("job %s resumes after epoch %s", job_id, resumed_from)
            _train(ctx, job, lease, workdir, resume)
    except Exception as exc:
        fail(ctx, job, exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _train(ctx: WorkerContext, job: Job, lease: Lease, workdir: Path, resume: Path | None) -> None:
    from tass.trainer.data import load_dataset
    from tass.trainer.saving import export_model, export_savedmodel
    from tass.trainer.train import train

    spec = TrainSpec.model_validate(job.spec)
    data = load_dataset(
        load_job_dataset(ctx, job.dataset), confine_to=ctx.settings.resolved_data_roots
    )
    reporter = JobReporter(ctx, lease, every_steps=ctx.settings.progress_every_steps)
    result = train(
        spec,
        data,
        hook=reporter,
        progress_every=1,
        checkpoint_dir=workdir / "checkpoints",
        resume_from=resume,
        log=log.info,
    )
    if result.stopped or lease.lost.is_set():
        end_stopped(ctx, job)
        return
    keras_file = workdir / "model.keras"
    export_model(result.model, keras_file, result.class_names)
    export_savedmodel(result.model, workdir / "savedmodel")
    zipped = Path(shutil.make_archive(str(workdir / "savedmodel"), "zip", workdir / "savedmodel"))
    _publish(ctx, job, result.final_metrics, result.class_names, keras_file, zipped)


def model_key(job: Job, name: str) -> str:
    """Write-once and per attempt, like checkpoints: only the attempt that wins the final
    transaction is ever recorded; the others' uploads are orphans for the collector."""
    return f"models/{job.id}/attempt-{job.attempt}/{name}"


def _publish(
    ctx: WorkerContext,
    job: Job,
    metrics: dict,
    class_names: list[str],  # type: ignore[type-arg]
    keras_file: Path,
    savedmodel_zip: Path,
) -> None:
    """Upload both model files, then create the model and succeed in one transaction."""
    model = Model(
        job_id=job.id,
        tenant=job.tenant,
        name=job.name,
        metrics=metrics,
        class_names=list(class_names),
    )
    uploads = {
        "model-keras": ctx.store.put_file(model_key(job, "model.keras"), keras_file),
        "model-savedmodel": ctx.store.put_file(model_key(job, "savedmodel.zip"), savedmodel_zip),
    }
    with ctx.sessions() as session:
        existing = session.scalar(select(Model).where(Model.job_id == job.id))
        if existing is not None:  # an earlier attempt published before dying
            model = existing
        else:
            session.add(model)
            session.flush()
        artifacts = [
            Artifact(
                job_id=job.id,
                model_id=model.id,
                kind=kind,
                key=obj.key,
                size=obj.size,
                sha256=obj.sha256,
            )
            for kind, obj in uploads.items()
        ]
        record_artifacts(session, artifacts)
        register_trained_model(session, job, model)  # register_as, in the same transaction
        done = finish(
            ctx,
            job,
            JobStatus.SUCCEEDED,
            reason="trained",
            session=session,
            values={"model_id": model.id, "result": {"final": metrics}},
        )
        if done:
            session.commit()
        else:  # cancelled or taken over meanwhile: publish nothing
            session.rollback()
    if not done:
        end_stopped(ctx, job)
