"""A training job: claim, load data, train with progress and checkpoints, store the model."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import select

from core.datapaths import resolve_dataset_path
from core.jobs import replace_artifacts
from core.models import Artifact, Job, Model
from core.reaper import job_deadline
from core.states import JobStatus
from trainer.spec import DatasetSpec, TrainSpec
from worker.claim import claim, end_stopped, fail, finish
from worker.context import WorkerContext
from worker.lease import Lease
from worker.reporter import JobReporter, checkpoint_key

log = logging.getLogger(__name__)


def load_job_dataset(ctx: WorkerContext, raw: dict) -> DatasetSpec:  # type: ignore[type-arg]
    """Re-check a server-side path against this worker's data roots before reading it."""
    spec = DatasetSpec.model_validate(raw)
    if spec.path is not None:
        path = resolve_dataset_path(spec.path, ctx.settings.resolved_data_roots)
        spec = spec.model_copy(update={"path": str(path)})
    return spec


def latest_stored_checkpoint(ctx: WorkerContext, job_id: str) -> Artifact | None:
    with ctx.sessions() as session:
        return session.scalar(
            select(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
            .order_by(Artifact.epoch.desc())
            .limit(1)
        )


def fetch_checkpoint(ctx: WorkerContext, artifact: Artifact, dest: Path) -> Path:
    """Download an epoch checkpoint (model file digest-checked, plus its state.json)."""
    assert artifact.epoch is not None
    if ctx.store.download(artifact.key, dest / "model.keras") != artifact.sha256:
        raise RuntimeError(f"checkpoint {artifact.key}: sha256 mismatch")
    state_key = checkpoint_key(artifact.job_id, artifact.epoch, "state.json")
    ctx.store.download(state_key, dest / "state.json")
    return dest


def run_train_job(ctx: WorkerContext, job_id: str) -> None:
    checkpoint = latest_stored_checkpoint(ctx, job_id)
    job = claim(ctx, job_id, resumed_from_epoch=checkpoint.epoch if checkpoint else None)
    if job is None:
        log.info("job %s is not queued any more; skipping this delivery", job_id)
        return
    log.info("job %s (attempt %s) claimed by %s", job_id, job.attempt, ctx.worker_id)
    workdir = Path(tempfile.mkdtemp(prefix=f"tass-{job_id}-"))
    deadline = job_deadline(job, ctx.settings)
    try:
        with Lease(ctx, job.id, job.attempt, deadline) as lease:
            resume = None
            if checkpoint is not None:
                resume = fetch_checkpoint(ctx, checkpoint, workdir / "resume")
                log.info("job %s resumes after epoch %s", job_id, checkpoint.epoch)
            _train(ctx, job, lease, workdir, resume)
    except Exception as exc:
        fail(ctx, job, exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _train(ctx: WorkerContext, job: Job, lease: Lease, workdir: Path, resume: Path | None) -> None:
    from trainer.data import load_dataset
    from trainer.saving import export_savedmodel, save_model
    from trainer.train import train

    spec = TrainSpec.model_validate(job.spec)
    data = load_dataset(load_job_dataset(ctx, job.dataset))
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
    save_model(result.model, keras_file)
    export_savedmodel(result.model, workdir / "savedmodel")
    zipped = Path(shutil.make_archive(str(workdir / "savedmodel"), "zip", workdir / "savedmodel"))
    _publish(ctx, job, result.final_metrics, result.class_names, keras_file, zipped)


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
        "model-keras": ctx.store.put_file(f"models/{job.id}/model.keras", keras_file),
        "model-savedmodel": ctx.store.put_file(f"models/{job.id}/savedmodel.zip", savedmodel_zip),
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
        replace_artifacts(session, artifacts)
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
