"""A job's MLflow run on a real `mlflow server` (loopback, SQLite backend, started here): the
spec as params, epoch metrics with their steps, the tass tags and the Keras model; a server
that is down never fails the job and the job's log says so. The server: `mlflow_url` in
tests/integration/conftest.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tass.contract.spec import TrainSpec
from tass.core.job_logs import read_log
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.log_capture import capture_job_logs
from tass.worker.mlflow_tracking import job_tracking
from tests.support.processes import free_port
from tests.support.worker_jobs import claimed_job

pytestmark = pytest.mark.integration

SHA = "ab" * 32


def context(tmp_path, uri: str) -> WorkerContext:
    settings = Settings(
        data_dir=tmp_path,
        broker_url="memory://",
        mlflow_tracking_uri=uri,
        job_log_flush_seconds=0.1,
    )
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def epoch(n: int) -> SimpleNamespace:
    return SimpleNamespace(
        kind="epoch", epoch=n, metrics={"loss": 1.0 / n, "val_accuracy": 0.2 * n}
    )


def tiny_model():  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_a_job_logs_params_metrics_tags_and_model(mlflow_url, tmp_path):
    from mlflow.tracking import MlflowClient

    ctx = context(tmp_path, mlflow_url)
    job = claimed_job(
        ctx, name="baseline", dataset={"source": "dataset", "sha256": SHA}, tenant="acme"
    )
    spec = TrainSpec.model_validate({"epochs": 2, "tracking": {"mlflow": {"experiment": "cifar"}}})
    with job_tracking(ctx, job, spec) as tracking:
        hook = tracking.wrap(lambda progress: True)
        assert hook(SimpleNamespace(kind="step", epoch=1, metrics={"loss": 9.0}))
        assert hook(epoch(1)) and hook(epoch(2))
        tracking.log_model(tiny_model())

    client = MlflowClient(tracking_uri=mlflow_url)
    experiment = client.get_experiment_by_name("cifar")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "baseline"
    assert run.data.tags["tass.job_id"] == job.id
    assert run.data.tags["tass.tenant"] == "acme"
    assert run.data.tags["tass.dataset_sha256"] == SHA
    assert run.data.params["epochs"] == "2"
    assert run.data.params["augmentation.crop_padding"] == "2"
    assert "tracking" not in run.data.params
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.5)]  # epochs, not steps
    models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    assert [m.source_run_id for m in models] == [run.info.run_id]
    assert models[0].name == "model"


def test_a_tracking_server_that_is_down_never_fails_the_job(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    ctx = context(tmp_path, down)
    job = claimed_job(ctx)
    spec = TrainSpec.model_validate({"epochs": 1})
    with capture_job_logs(ctx, job.id, job.attempt), job_tracking(ctx, job, spec) as tracking:
        hook = tracking.wrap(lambda progress: True)
        assert hook(epoch(1))  # training goes on
        tracking.log_model(object())
        assert not tracking.active
    with ctx.sessions() as session:
        lines = [item.line for item in read_log(session, ctx.store, job.id).items]
    assert any(f"MLflow tracking server {down} failed to start a run" in line for line in lines), (
        lines
    )
