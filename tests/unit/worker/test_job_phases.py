"""A job's progress names what it is doing, phase by phase, from the transaction that claims it
to the one that ends it: a training job goes loading -> compiling -> training -> evaluating
(test-time-flip validation) -> exporting, an evaluation job loading -> evaluating."""

from __future__ import annotations

from typing import Any

import pytest

from tass.core import job_lifecycle
from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker import lease as lease_module
from tass.worker.context import WorkerContext
from tass.worker.evaluate_job import run_evaluate_job
from tass.worker.train_job import run_train_job
from tests.support.worker_jobs import job_row, place_here

TINY_SPEC = {
    "epochs": 2,
    "width": 0.125,
    "batch_size": 32,
    "validation_split": 0.25,
    "jit_compile": "off",
}


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://", heartbeat_seconds=60)
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


@pytest.fixture
def phases(monkeypatch) -> list[str]:
    """Every phase the worker wrote into its job's progress, in order (repeats collapsed)."""
    seen: list[str] = []
    real_heartbeat = job_lifecycle.heartbeat

    def recording_heartbeat(session: Any, job_id: str, attempt: int, **values: Any) -> bool:
        renewed = real_heartbeat(session, job_id, attempt, **values)
        phase = (values.get("progress") or {}).get("phase")
        if renewed and phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return renewed

    monkeypatch.setattr(job_lifecycle, "heartbeat", recording_heartbeat)
    monkeypatch.setattr(lease_module, "heartbeat", recording_heartbeat)
    return seen


def queued_job(ctx: WorkerContext, **fields: Any) -> str:
    with ctx.sessions.begin() as session:
        job = Job(tenant="t", status="queued", **fields)
        session.add(job)
        session.flush()
        return job.id


def test_a_training_job_shows_each_phase_in_order_then_an_evaluation_of_its_model(ctx, phases):
    train_id = queued_job(
        ctx,
        type="train",
        queue="train",
        spec=TINY_SPEC,
        dataset={"source": "synthetic", "num_examples": 128},
    )
    place_here(ctx, train_id)
    run_train_job(ctx, train_id)

    trained = job_row(ctx, train_id)
    assert trained.status == "succeeded", trained.error
    assert phases == ["loading", "compiling", "training", "evaluating", "exporting"]
    assert trained.progress["epoch"] == trained.progress["epochs"] == 2  # kept through the tail

    phases.clear()
    eval_id = queued_job(
        ctx,
        type="evaluate",
        queue="evaluate",
        model_id=trained.model_id,
        dataset={"source": "synthetic", "num_examples": 64},
    )
    place_here(ctx, eval_id)
    run_evaluate_job(ctx, eval_id)
    assert job_row(ctx, eval_id).status == "succeeded", job_row(ctx, eval_id).error
    assert phases == ["loading", "evaluating"]
