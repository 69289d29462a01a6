"""Delivering registry mirrors (core/registry_mirror.py) to MLflow's model registry, in a
thread the worker's housekeeping starts: each pending version becomes a version of the
registered model of the same name in MLflow (created on first use, tagged with the tenant),
pointing at the model the job's MLflow run logged, tagged with the tass name, version, model
and job. A tracking server that is down fails nothing: the delivery is tried again with
backoff, and after its tries the mirror is `failed` with the error (shown on the version in
GET /v1/registry/{name}) and the worker's log says so. mlflow stays an optional import."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from tass.core.db import SessionFactory
from tass.core.registry_mirror import (
    MirrorTask,
    claim_due_mirrors,
    record_mirror_failure,
    record_mirrored,
)
from tass.core.settings import Settings, get_settings
from tass.worker.context import worker_sessions
from tass.worker.mlflow_tracking import MLFLOW_ENV

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
RETRY_BASE_SECONDS = 10.0
MAX_RETRY_SECONDS = 600.0


class MirrorRefused(Exception):
    """MLflow's registry holds the name for another tenant: retrying cannot change that."""


def registry_client(uri: str) -> Any:  # an MlflowClient (mlflow is an optional extra)
    """An MLflow client for `uri` without mlflow's own long HTTP retries; None without mlflow."""
    for name, value in MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        return None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _registered_model(client: Any, task: MirrorTask) -> Any:
    """MLflow's registered model of the task's name, created (tagged with the tenant) on first
    use; MirrorRefused when another tenant's mirror made it."""
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(task.name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        registered = client.create_registered_model(
            task.name,
            tags={"tass.tenant": task.tenant},
            description=f"Mirrored from tass's model registry ({task.tenant}/{task.name}).",
        )
    owner = (registered.tags or {}).get("tass.tenant")
    if owner is not None and owner != task.tenant:
        raise MirrorRefused(f"MLflow's registered model {task.name!r} mirrors another tenant's")
    return registered


def mirror_version(client: Any, task: MirrorTask) -> str:
    """Deliver one version; its MLflow version number. Idempotent: a version that an earlier
    try created (its reply lost) is found by its tass.version tag, not made twice."""
    _registered_model(client, task)
    for existing in client.search_model_versions(f"name = '{task.name}'"):
        if (existing.tags or {}).get("tass.version") == str(task.version):
            return str(existing.version)
    created = client.create_model_version(
        task.name,
        source=f"models:/{task.mlflow_model_id}",
        run_id=task.mlflow_run_id,
        model_id=task.mlflow_model_id,
        tags={
            "tass.version": str(task.version),
            "tass.model_id": task.model_id,
            "tass.job_id": task.job_id,
            "tass.tenant": task.tenant,
        },
        description=f"tass {task.name}:{task.version} (model {task.model_id})",
    )
    return str(created.version)


def retry_delay(tries: int, base: float = RETRY_BASE_SECONDS) -> float:
    return min(MAX_RETRY_SECONDS, base * 2 ** max(0, tries - 1))


def deliver_mirrors(
    factory: SessionFactory, settings: Settings, *, retry_base: float = RETRY_BASE_SECONDS
) -> int:
    """One pass: deliver every due mirror; how many were tried. Nothing without a tracking
    URI or without mlflow installed (the mirrors wait)."""
    uri = settings.mlflow_tracking_uri
    client = registry_client(uri) if uri else None
    if client is None:
        return 0
    with factory.begin() as session:
        tasks = claim_due_mirrors(session)
    for task in tasks:
        try:
            version = mirror_version(client, task)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            retry = None if isinstance(exc, MirrorRefused) else retry_delay(task.tries, retry_base)
            with factory.begin() as session:
                gave_up = record_mirror_failure(session, task, error, retry_in=retry)
            log.warning(
                "MLflow registry at %s: %s:%s (try %d) %s: %s",
                uri,
                task.name,
                task.version,
                task.tries,
                "not mirrored, giving up" if gave_up else "not mirrored yet, will retry",
                error,
            )
            continue
        with factory.begin() as session:
            record_mirrored(session, task, version)
        log.info(
            "%s:%s mirrored to MLflow's registry as version %s", task.name, task.version, version
        )
    return len(tasks)


def mirror_loop(stop: threading.Event) -> None:
    """Deliver until `stop` is set, every POLL_SECONDS (at once while a pass found work)."""
    settings = get_settings()
    if not settings.mlflow_tracking_uri:
        return
    with worker_sessions(settings) as factory:
        while not stop.is_set():
            try:
                tried = deliver_mirrors(factory, settings)
            except Exception:
                log.exception("MLflow registry mirror pass failed; retrying")
                tried = 0
            if not tried:
                stop.wait(POLL_SECONDS)


def start_registry_mirror(stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(
        target=mirror_loop, args=(stop,), name="tass-mlflow-mirror", daemon=True
    )
    thread.start()
    return thread
