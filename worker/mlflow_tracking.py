"""A training job's MLflow run: with TASS_MLFLOW_TRACKING_URI set (or the spec's
`tracking: {mlflow: {experiment}}` with it), the job logs its spec as params, its metrics at
each epoch's end (step = epoch), its tags (tass job id, tenant, attempt, dataset sha256) and
its model (the `mlflow.keras` flavour) to that server.

A tracking server that is down never fails the job: each call is retried a few times, then
tracking stops for the job and a line in the job's log says why. mlflow is an optional extra
(`tass[tracking]`); without it a job that asks for tracking says so in its log and trains."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tenacity import Retrying, stop_after_attempt, wait_exponential

from tass.contract.spec import TrainSpec
from tass.core.models import Job
from tass.worker.context import WorkerContext

log = logging.getLogger(__name__)

TRIES = 3
# mlflow's own HTTP retries would hold a job for minutes against a server that is down
MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def flat_params(spec: TrainSpec) -> dict[str, str]:
    """The spec as MLflow params: nested fields by their dotted path, None as 'None'."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}{key}.", item)
        else:
            out[prefix.rstrip(".")] = str(value)

    walk("", spec.model_dump(mode="json", exclude={"tracking"}))
    return out


class JobTracking:
    """The job's run, or nothing (`run_id` None): every method is then a no-op."""

    def __init__(self, client: Any = None, run_id: str | None = None, uri: str = "") -> None:
        self.client, self.run_id, self.uri = client, run_id, uri
        self.logged_model_id: str | None = None  # MLflow's id of the model log_model logged

    @property
    def logged(self) -> tuple[str | None, str | None]:
        """(run id, logged model id) for the tass model's record; (None, None) untracked."""
        return (self.run_id, self.logged_model_id) if self.logged_model_id else (None, None)

    @property
    def active(self) -> bool:
        return self.run_id is not None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        """`fn` with a few retries; on failure tracking stops for the job and its log says so."""
        if not self.active:
            return None
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(TRIES),
                wait=wait_exponential(multiplier=0.5, max=4),
                reraise=True,
            ):
                with attempt:
                    return fn()
        except Exception as exc:
            log.warning(
                "MLflow tracking server %s failed to %s after %d tries (%s: %s); this job "
                "goes on without MLflow tracking",
                self.uri,
                what,
                TRIES,
                type(exc).__name__,
                exc,
            )
            self.run_id = None
        return None

    def wrap(self, hook: Callable[[Any], bool]) -> Callable[[Any], bool]:
        """The trainer hook, plus each epoch's metrics to the run."""
        if not self.active:
            return hook

        def tracked(progress: Any) -> bool:
            keep_going = hook(progress)
            if progress.kind == "epoch":
                self.log_epoch(progress.epoch, progress.metrics)
            return keep_going

        return tracked

    def log_epoch(self, epoch: int, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [
            Metric(key, float(value), now, epoch)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and key != "epoch"
        ]
        self._call("log epoch metrics", lambda: self.client.log_batch(self.run_id, metrics=rows))

    def log_model(self, model: Any) -> None:
        """The trained model in the `mlflow.keras` flavour, as the run's `model` (its MLflow
        id is kept in `logged_model_id`, for the registry mirror)."""
        if not self.active:
            return
        import mlflow

        def upload() -> str:
            mlflow.set_tracking_uri(self.uri)
            with mlflow.start_run(run_id=self.run_id, log_system_metrics=False):
                info = mlflow.keras.log_model(  # explicit requirements: no slow inference
                    model, name="model", pip_requirements=["tensorflow", "keras"]
                )
            return str(info.model_id)

        self.logged_model_id = self._call("log the model", upload)

    def end(self, status: str) -> None:
        """FINISHED, FAILED or KILLED; the first call wins."""
        run_id = self.run_id
        self._call("end the run", lambda: self.client.set_terminated(run_id, status=status))
        self.run_id = None


def _experiment(spec: TrainSpec) -> str:
    target = spec.tracking.mlflow if spec.tracking else None
    return target.experiment if target else "tass"


def _tags(job: Job) -> dict[str, str]:
    tags = {
        "tass.job_id": job.id,
        "tass.tenant": job.tenant,
        "tass.attempt": str(job.attempt),
        "tass.dataset_source": str((job.dataset or {}).get("source")),
        "mlflow.runName": job.name or f"tass-{job.id[:8]}",
    }
    sha256 = (job.dataset or {}).get("sha256")
    if sha256:
        tags["tass.dataset_sha256"] = str(sha256)
    return tags


def start_tracking(ctx: WorkerContext, job: Job, spec: TrainSpec) -> JobTracking:
    """The job's MLflow run, created (or an inactive JobTracking when tracking is off)."""
    uri = ctx.settings.mlflow_tracking_uri
    wanted = spec.tracking is not None and spec.tracking.mlflow is not None
    if not uri:
        if wanted:
            log.warning("the spec asks for MLflow tracking, but TASS_MLFLOW_TRACKING_URI is unset")
        return JobTracking()
    try:
        for name, value in MLFLOW_ENV.items():
            os.environ.setdefault(name, value)
        from mlflow.tracking import MlflowClient
    except ImportError:
        log.warning("MLflow tracking is configured but mlflow is not installed (tass[tracking])")
        return JobTracking()
    tracking = JobTracking(MlflowClient(tracking_uri=uri), "pending", uri)
    client, experiment = tracking.client, _experiment(spec)

    def create() -> str:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(experiment_id, tags=_tags(job))
        params = flat_params(spec)
        from mlflow.entities import Param

        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
        return str(run.info.run_id)

    tracking.run_id = tracking._call("start a run", create)
    if tracking.run_id:
        log.info("MLflow run %s in experiment %r at %s", tracking.run_id, experiment, uri)
    return tracking


@contextmanager
def job_tracking(ctx: WorkerContext, job: Job, spec: TrainSpec) -> Iterator[JobTracking]:
    """The job's run for the `with` block: FINISHED when it ends, FAILED on an exception."""
    tracking = start_tracking(ctx, job, spec)
    try:
        yield tracking
    except BaseException:
        tracking.end("FAILED")
        raise
    tracking.end("FINISHED")
