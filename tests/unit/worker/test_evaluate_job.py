"""Evaluation jobs in-process: a cancel stops the computation within a batch (not after the
whole dataset), a dataset whose classes differ from the model's is refused by name, and
`test_time_flip` reaches the evaluation."""

from __future__ import annotations

import logging
import threading
import time

import keras
import pytest

from tass.contract.statuses import JobStatus
from tass.core.job_transitions import transition
from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.trainer.saving import export_model
from tass.worker.context import WorkerContext
from tass.worker.evaluate_job import run_evaluate_job
from tests.support.seed import seed_trained_model
from tests.support.worker_jobs import job_row, place_here

CLASSES = [f"class_{c}" for c in range(10)]  # the synthetic source's names


@pytest.fixture
def ctx(tmp_path) -> WorkerContext:
    settings = Settings(
        data_dir=tmp_path,
        broker_url="memory://",
        heartbeat_seconds=0.1,
        heartbeat_timeout_seconds=30,
    )
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def evaluation(
    ctx: WorkerContext,
    tmp_path,
    class_names: list[str],
    examples: int,
    spec: dict[str, object] | None = None,
) -> str:
    """A stored model (a small stock-Keras classifier) and a queued evaluation job of it."""
    inputs = keras.Input((32, 32, 3))
    hidden = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(hidden))
    path = export_model(keras.Model(inputs, outputs), tmp_path / "model.keras", CLASSES)
    with ctx.sessions.begin() as session:
        model = seed_trained_model(
            session, ctx.store, path.read_bytes(), tenant="t", class_names=class_names
        )
        job = Job(
            type="evaluate",
            tenant="t",
            status="queued",
            queue="evaluate",
            model_id=model.id,
            dataset={"source": "synthetic", "num_examples": examples},
            spec=spec,
        )
        session.add(job)
        session.flush()
        return job.id


def test_a_cancel_stops_an_evaluation_within_a_batch(ctx, tmp_path, caplog):
    job_id = evaluation(ctx, tmp_path, CLASSES, examples=40_000)
    place_here(ctx, job_id)
    worker = threading.Thread(target=run_evaluate_job, args=(ctx, job_id))
    with caplog.at_level(logging.INFO, logger="tass.worker.evaluate_job"):
        worker.start()
        deadline = time.monotonic() + 60
        while (job_row(ctx, job_id).progress or {}).get("phase") != "evaluating":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with ctx.sessions.begin() as session:  # what DELETE /v1/jobs/{id} does
            assert transition(session, job_id, JobStatus.CANCELLING, reason="cancel requested")
        worker.join(120)
    assert not worker.is_alive()
    job = job_row(ctx, job_id)
    assert job.status == "cancelled" and job.result is None
    stopped = [r.getMessage() for r in caplog.records if "evaluation stopped after" in r.message]
    assert stopped, caplog.text
    done, total = map(int, stopped[0].split("after ")[1].split(" batches")[0].split(" of "))
    assert done < total  # it did not compute the whole dataset first


def test_an_evaluation_refuses_a_dataset_with_other_classes(ctx, tmp_path):
    registered = list(reversed(CLASSES))
    job_id = evaluation(ctx, tmp_path, registered, examples=100)
    place_here(ctx, job_id)
    run_evaluate_job(ctx, job_id)
    job = job_row(ctx, job_id)
    assert job.status == "failed"
    assert str(registered) in job.error and str(CLASSES) in job.error


def test_an_evaluation_with_test_time_flips_averages_each_image_with_its_mirror(
    ctx, tmp_path, monkeypatch
):
    import tass.trainer.evaluate as evaluate_module

    flips = []
    evaluate = evaluate_module.evaluate

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        flips.append(kwargs.get("flip"))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", recorded)
    (tmp_path / "plain").mkdir()
    (tmp_path / "flip").mkdir()
    plain = evaluation(ctx, tmp_path / "plain", CLASSES, examples=50)
    flipped = evaluation(ctx, tmp_path / "flip", CLASSES, 50, spec={"test_time_flip": True})
    place_here(ctx, plain)
    run_evaluate_job(ctx, plain)
    place_here(ctx, flipped)
    run_evaluate_job(ctx, flipped)

    assert flips == [False, True]  # the mirror-averaging itself: tests/unit/trainer
    results = [job_row(ctx, job_id).result for job_id in (plain, flipped)]
    assert all(r is not None and r["num_examples"] == 50 for r in results)
