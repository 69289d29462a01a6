"""A training job: claim, load data, train with progress and checkpoints, store the model;
its progress names each phase (loading, compiling, training, evaluating, exporting)."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from tass.contract.artifacts import (
    CHECKPOINTS_DIR,
    MODEL_FILE,
    MODEL_FORMAT_FILES,
    SAVEDMODEL_DIR,
    STATE_FILE,
    ArtifactError,
    ModelFormat,
    key_file_name,
    key_folder,
    model_key,
    model_kind,
)
from tass.contract.spec import TrainSpec
from tass.contract.statuses import JobStatus
from tass.core.job_queries import (
    latest_checkpoint_files,
    model_artifact,
    reported_steps_per_epoch,
)
from tass.core.job_results import forget_metrics_after_checkpoint, record_model
from tass.core.models import Artifact, Job
from tass.worker.claim import end_stopped, finish
from tass.worker.context import WorkerContext
from tass.worker.job_data import load_job_data
from tass.worker.job_run import run_claimed
from tass.worker.lease import Lease
from tass.worker.mlflow_tracking import JobTracking, job_tracking
from tass.worker.preemption import hand_back, resume_point, stop_requests
from tass.worker.reporter import JobReporter
from tass.worker.tensorboard_upload import publish_tensorboard, restore_tensorboard
from tass.worker.tracing import epoch_spans

log = logging.getLogger(__name__)


def latest_stored_checkpoint(ctx: WorkerContext, job_id: str) -> list[Artifact]:
    """The recorded files of the job's newest checkpoint (empty when there is none)."""
    with ctx.sessions() as session:
        return latest_checkpoint_files(session, job_id)


def reported_epoch_length(ctx: WorkerContext, job_id: str) -> int | None:
    """The epoch length in steps the job's trainer last reported (None before any report)."""
    with ctx.sessions() as session:
        return reported_steps_per_epoch(session, job_id)


def fetch_checkpoint(ctx: WorkerContext, files: list[Artifact], dest: Path) -> Path:
    """Download every recorded file of a checkpoint, each checked against its digest."""
    for artifact in files:
        ctx.store.download(artifact.key, dest / key_file_name(artifact.key), artifact.sha256)
    if not (dest / STATE_FILE).exists():  # written before state files were recorded
        ctx.store.download(key_folder(files[0].key) + STATE_FILE, dest / STATE_FILE, None)
    return dest


def forget_lost_progress(ctx: WorkerContext, job: Job, epoch: int, step: int | None = None) -> None:
    """Metrics that an earlier run wrote after its last checkpoint (`epoch` epochs and `step`
    global steps done; by default the end of that epoch) describe training that this run
    redoes: drop them so that only one history remains."""
    if step is None:
        steps_per_epoch = (job.progress or {}).get("steps_per_epoch")
        step = epoch * int(steps_per_epoch) if steps_per_epoch else None
    with ctx.sessions.begin() as session:
        forget_metrics_after_checkpoint(session, job.id, epoch, step)


def run_train_job(ctx: WorkerContext, job_id: str) -> None:
    """Run the job; a SIGTERM meanwhile (see worker.preemption) checkpoints and hands it back."""
    with stop_requests() as stop:
        _run_train_job(ctx, job_id, stop)


def _run_train_job(ctx: WorkerContext, job_id: str, stop: threading.Event) -> None:
    checkpoint = latest_stored_checkpoint(ctx, job_id)
    resumed_from, resumed_step = resume_point(checkpoint, reported_epoch_length(ctx, job_id))
    with run_claimed(
        ctx,
        job_id,
        resumed_from_epoch=resumed_from or None,
        resumed_from_step=resumed_step or None,
        preempt=stop,
    ) as run:
        if run is None:
            return
        job, workdir = run.job, run.workdir
        forget_lost_progress(ctx, job, resumed_from, resumed_step)
        resume = None
        if checkpoint:
            resume = fetch_checkpoint(ctx, checkpoint, workdir / "resume")
            log.info("job %s resumes after step %s", job_id, resumed_step)
        with job_tracking(ctx, job, TrainSpec.model_validate(job.spec)) as tracking:
            _train(ctx, job, run.lease, workdir, resume, stop, tracking)


def fetch_parent_model(
    ctx: WorkerContext, spec: TrainSpec, workdir: Path
) -> tuple[Path, str] | None:
    """Fine-tuning: the .keras file of the model `spec.init_from` names (the id the API
    recorded at submit), checked against its sha256, and that sha256 (for lineage)."""
    if spec.init_from is None:
        return None
    with ctx.sessions() as session:
        artifact = model_artifact(session, spec.init_from, ModelFormat.KERAS)
    if artifact is None:
        raise ArtifactError(f"init_from: model {spec.init_from} has no stored .keras file")
    verified = ctx.store.download(artifact.key, workdir / "parent" / MODEL_FILE, artifact.sha256)
    return verified.path, verified.sha256


def _train(
    ctx: WorkerContext,
    job: Job,
    lease: Lease,
    workdir: Path,
    resume: Path | None,
    stop: threading.Event,
    tracking: JobTracking,
) -> None:
    from tass.trainer.saving import export_model, export_savedmodel
    from tass.trainer.train import train

    spec = TrainSpec.model_validate(job.spec)
    parent = fetch_parent_model(ctx, spec, workdir)
    data = load_job_data(ctx, job.dataset, workdir, image_size=spec.image_size)
    reporter = JobReporter(
        ctx, lease, every_steps=ctx.settings.progress_every_steps, progress=job.progress
    )
    if resume is not None:  # a preempted segment's event files: this segment adds to them
        restore_tensorboard(ctx, job, workdir / "tensorboard")
    result = train(
        spec,
        data,
        hook=epoch_spans(tracking.wrap(reporter), ctx.settings.opentelemetry),
        progress_every=1,
        checkpoint_dir=workdir / CHECKPOINTS_DIR,
        resume_from=resume,
        init_from=parent[0] if parent else None,
        log=log.info,
        on_phase=reporter.phase,
        stop_requested=stop.is_set,
        tensorboard_dir=workdir / "tensorboard",
    )
    # every segment's event files, a preempted one's included, stored before any hand-back:
    # the segment that resumes the attempt starts from them
    publish_tensorboard(ctx, job, workdir / "tensorboard")
    stopped_at = result.stopped_at
    if (
        stopped_at is not None
        and not lease.lost.is_set()
        and hand_back(ctx, job, lease, stopped_at)
    ):
        tracking.end("KILLED")  # preempted: the attempt resumes later, in a run of its own
        return
    if result.stopped or lease.lost.is_set() or not reporter.phase("exporting"):
        tracking.end("KILLED")
        end_stopped(ctx, job)
        return
    tracking.log_model(result.model)
    keras_file = workdir / MODEL_FILE
    export_model(result.model, keras_file, result.class_names)
    savedmodel = workdir / SAVEDMODEL_DIR
    export_savedmodel(result.model, savedmodel)
    zipped = Path(shutil.make_archive(str(savedmodel), "zip", savedmodel))
    lineage = (str(spec.init_from), parent[1]) if parent else None
    _publish(
        ctx,
        job,
        result.final_metrics,
        result.class_names,
        keras_file,
        zipped,
        lineage,
        mlflow=tracking.logged,
    )


def _publish(
    ctx: WorkerContext,
    job: Job,
    metrics: dict[str, Any],
    class_names: list[str],
    keras_file: Path,
    savedmodel_zip: Path,
    parent: tuple[str, str] | None = None,
    *,
    mlflow: tuple[str | None, str | None] = (None, None),
) -> None:
    """Upload both model files, then create the model (with its parent model id and sha256
    when fine-tuned, its MLflow run and logged model when tracked) and succeed in one
    transaction."""
    files = {ModelFormat.KERAS: keras_file, ModelFormat.SAVEDMODEL: savedmodel_zip}
    uploads = {
        model_kind(fmt): ctx.store.put_file(
            model_key(job.id, job.attempt, MODEL_FORMAT_FILES[fmt]), path
        )
        for fmt, path in files.items()
    }
    with ctx.sessions() as session:
        # the model (or the one an earlier attempt recorded before dying), its files and its
        # register_as registration, in the transaction that succeeds the job
        model = record_model(
            session, job, metrics, class_names, uploads, parent=parent, mlflow=mlflow
        )
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
