"""An evaluation job: load a stored model (digest-checked), evaluate it, store the metrics; its
progress says `loading` (model and data), then `evaluating`."""

from __future__ import annotations

import logging
from pathlib import Path

from tass.contract.artifacts import MODEL_FILE, ArtifactError, ModelFormat
from tass.contract.statuses import JobStatus
from tass.core.job_queries import get_model, model_artifact
from tass.worker.claim import end_stopped, finish
from tass.worker.context import WorkerContext
from tass.worker.job_data import load_job_data
from tass.worker.job_run import JobRun, run_claimed
from tass.worker.reporter import JobReporter

log = logging.getLogger(__name__)


def registered_class_names(ctx: WorkerContext, model_id: str) -> list[str] | None:
    """The model's classes in output order, as the registry recorded them at training."""
    with ctx.sessions() as session:
        model = get_model(session, model_id)
        return list(model.class_names) if model is not None and model.class_names else None


def fetch_model_file(ctx: WorkerContext, model_id: str, dest: Path) -> Path:
    """The model's Keras file, checked against its recorded sha256 (ArtifactError if it is
    missing or altered: nothing is loaded from it)."""
    with ctx.sessions() as session:
        artifact = model_artifact(session, model_id, ModelFormat.KERAS)
    if artifact is None:
        raise ArtifactError(f"model {model_id} has no stored .keras file")
    return ctx.store.download(artifact.key, dest, artifact.sha256).path


def run_evaluate_job(ctx: WorkerContext, job_id: str) -> None:
    with run_claimed(ctx, job_id) as run:
        if run is not None:
            _evaluate(ctx, run)


def _evaluate(ctx: WorkerContext, run: JobRun) -> None:
    from tass.trainer.errors import EvaluationStopped
    from tass.trainer.evaluate import evaluate
    from tass.trainer.saving import load_model, read_class_names

    job, lease = run.job, run.lease
    if job.model_id is None:
        raise ValueError(f"evaluation job {job.id} names no model to evaluate")
    model_file = fetch_model_file(ctx, job.model_id, run.workdir / MODEL_FILE)
    model = load_model(model_file, compile=False)
    classes = registered_class_names(ctx, job.model_id) or read_class_names(model_file)
    data = load_job_data(ctx, job.dataset, run.workdir, image_size=model.input_shape[1] or 32)
    reporter = JobReporter(ctx, lease, every_steps=1, progress=job.progress)
    if not reporter.phase("evaluating"):
        log.info("job %s stopped before its evaluation began", job.id)
        end_stopped(ctx, job)
        return
    try:  # the lease thread sets `lost` on cancel, deadline or takeover
        result = evaluate(
            model,
            data,
            class_names=classes,
            hook=lambda *_: not lease.lost.is_set(),
            flip=bool((job.spec or {}).get("test_time_flip")),
        ).to_dict()
    except EvaluationStopped as stopped:
        log.info("job %s: %s", job.id, stopped)
        end_stopped(ctx, job)
        return
    if lease.lost.is_set():
        end_stopped(ctx, job)
        return
    values = {
        "result": result,
        "latest_metrics": {"loss": result["loss"], "accuracy": result["accuracy"]},
    }
    if not finish(ctx, job, JobStatus.SUCCEEDED, reason="evaluated", values=values):
        end_stopped(ctx, job)
