"""Registering in tass mirrors to MLflow's model registry (a real `mlflow server`, the
`mlflow_url` fixture): a job's `register_as` and POST /v1/registry/{name}/versions each become
a version of the same name in MLflow, pointing at the job's run and the model it logged; the
request never waits for MLflow, and a server that is down fails nothing (retried, then the
version says why it was not mirrored)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tass.api.app import create_app
from tass.contract.spec import TrainSpec
from tass.core import registry_mirror
from tass.core.apikeys import create_key
from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext
from tass.worker.mlflow_registry import deliver_mirrors
from tass.worker.mlflow_tracking import job_tracking
from tass.worker.train_job import _publish
from tests.support.processes import free_port
from tests.support.worker_jobs import claimed_job

pytestmark = pytest.mark.integration

SPEC = {"epochs": 1, "tracking": {"mlflow": {"experiment": "registry-mirror"}}}


def settings_for(tmp_path: Path, uri: str) -> Settings:
    settings = Settings(
        data_dir=tmp_path,
        broker_url="memory://",
        mlflow_tracking_uri=uri,
        allowed_hosts=["testserver"],
    )
    upgrade(settings.resolved_database_url)
    return settings


@contextmanager
def service(settings: Settings) -> Iterator[tuple[WorkerContext, TestClient]]:
    """A worker's context and the API (in-process, started) as tenant `acme`, on one
    database."""
    ctx = WorkerContext(settings)
    with ctx.sessions.begin() as session:
        _, key = create_key(session, "acme")
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings), headers=headers) as client:
        yield ctx, client


def tiny_model():  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def trained(
    ctx: WorkerContext, tmp_path: Path, *, register_as: str | None = None, log_model: bool = True
) -> tuple[Job, tuple[str | None, str | None]]:
    """A tracked job that succeeded with a model (logged to MLflow unless `log_model` is
    False); its (run id, logged model id)."""
    job = claimed_job(ctx, tenant="acme", spec=SPEC, register_as=register_as)
    with job_tracking(ctx, job, TrainSpec.model_validate(SPEC)) as tracking:
        if log_model:
            tracking.log_model(tiny_model())
        logged = tracking.logged
        files = [tmp_path / f"{job.id}.keras", tmp_path / f"{job.id}.zip"]
        for path in files:
            path.write_bytes(job.id.encode())
        _publish(ctx, job, {"val_accuracy": 0.5}, ["a", "b"], *files, mlflow=logged)
    return job, logged


def model_of(ctx: WorkerContext, job: Job) -> str:
    with ctx.sessions() as session:
        return str(session.get(Job, job.id).model_id)


def test_register_as_and_the_api_mirror_to_mlflows_registry(mlflow_url, tmp_path):
    from mlflow.tracking import MlflowClient

    with service(settings_for(tmp_path, mlflow_url)) as (ctx, client):
        first, first_logged = trained(ctx, tmp_path, register_as="mirrored-net")
        second, second_logged = trained(ctx, tmp_path)
        created = client.post(
            "/v1/registry/mirrored-net/versions", json={"model_id": model_of(ctx, second)}
        )
        assert created.status_code == 201, created.text
        untracked, _ = trained(ctx, tmp_path, log_model=False)  # nothing in MLflow to point at
        client.post(
            "/v1/registry/mirrored-net/versions", json={"model_id": model_of(ctx, untracked)}
        )
        shown = client.get("/v1/registry/mirrored-net").json()["versions"]
        assert [v["mlflow"] and v["mlflow"]["status"] for v in shown] == [
            "pending",
            "pending",
            None,
        ]

        assert deliver_mirrors(ctx.sessions, ctx.settings) == 2  # the worker's housekeeping does
        assert deliver_mirrors(ctx.sessions, ctx.settings) == 0  # once

        mlflow = MlflowClient(tracking_uri=mlflow_url)
        assert mlflow.get_registered_model("mirrored-net").tags["tass.tenant"] == "acme"
        versions = sorted(
            mlflow.search_model_versions("name = 'mirrored-net'"), key=lambda v: int(v.version)
        )
        assert [(v.tags["tass.version"], v.run_id, v.source) for v in versions] == [
            ("1", first_logged[0], f"models:/{first_logged[1]}"),
            ("2", second_logged[0], f"models:/{second_logged[1]}"),
        ]
        assert versions[0].tags["tass.job_id"] == first.id
        assert versions[1].tags["tass.model_id"] == model_of(ctx, second)
        shown = client.get("/v1/registry/mirrored-net").json()["versions"]
        assert [v["mlflow"] and (v["mlflow"]["status"], v["mlflow"]["version"]) for v in shown] == [
            ("mirrored", versions[0].version),
            ("mirrored", versions[1].version),
            None,
        ]


def test_a_registry_server_that_is_down_fails_nothing(tmp_path, monkeypatch):
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with service(settings_for(tmp_path, down)) as (ctx, client):
        job = claimed_job(ctx, tenant="acme", spec=SPEC)
        files = [tmp_path / "m.keras", tmp_path / "m.zip"]
        for path in files:
            path.write_bytes(b"model")
        # a model that an earlier run logged to MLflow; the server is down since
        _publish(ctx, job, {}, ["a", "b"], *files, mlflow=("run-1", "m-1"))
        created = client.post(
            "/v1/registry/offline-net/versions", json={"model_id": model_of(ctx, job)}
        )
        assert created.status_code == 201, created.text

        assert deliver_mirrors(ctx.sessions, ctx.settings, retry_base=0) == 1
        [version] = client.get("/v1/registry/offline-net").json()["versions"]
        assert version["mlflow"]["status"] == "pending"  # to be tried again
        assert version["mlflow"]["tries"] == 1 and version["mlflow"]["error"]

        monkeypatch.setattr(registry_mirror, "MAX_TRIES", 2)
        assert deliver_mirrors(ctx.sessions, ctx.settings, retry_base=0) == 1
        [version] = client.get("/v1/registry/offline-net").json()["versions"]
        assert version["mlflow"]["status"] == "failed"
        assert "Connection" in version["mlflow"]["error"], version["mlflow"]["error"]
        assert deliver_mirrors(ctx.sessions, ctx.settings, retry_base=0) == 0  # given up
        with ctx.sessions() as session:
            assert session.get(Job, job.id).status == "succeeded"
