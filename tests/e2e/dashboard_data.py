"""Seed data for the dashboard's browser test, written straight into the database with `core`
(no worker, no TensorFlow): finished training jobs with metrics, a model with stored files, a
finished evaluation, a failed, a queued and a running job, and a worker."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from tass.contract.spec import TrainSpec
from tass.contract.statuses import JobStatus
from tass.core.apikeys import create_key
from tass.core.job_lifecycle import create_job
from tass.core.job_results import stored_artifact, upsert_metrics
from tass.core.job_transitions import transition
from tass.core.models import Job, Model, utcnow
from tass.core.objectstore import ObjectStore
from tass.core.workers import WorkerInfo, report_alive
from tass.trainer.data.cifar import CIFAR10_CLASSES

TENANT = "acme"
CLASS_NAMES = list(CIFAR10_CLASSES)
EPOCHS = 6
STEPS_PER_EPOCH = 40
STEP_EVERY = 4  # a step row every 4 steps -> 10 per epoch
MODEL_BYTES = b"PK\x03\x04 not really a keras zip " * 300
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1"> & <b>bold</b>'
WORKER = "gpu-worker-1@node7"


@dataclass
class Seeded:
    key: str
    baseline: str = ""  # succeeded training job, with a model and files
    wider: str = ""  # succeeded training job with other hyperparameters
    evaluation: str = ""  # succeeded evaluation of the baseline model
    failed: str = ""
    queued: str = ""
    running: str = ""  # running, 2 of 6 epochs done
    model_id: str = ""
    hostile: str = ""  # a job whose name and tags are HTML
    model_sha256: str = ""
    step_rows: int = 0
    spec: dict = field(default_factory=dict)


def _curve(epoch: int, scale: float) -> dict[str, float]:
    """Plausible learning curves: loss falls, accuracy rises, validation a bit behind."""
    loss = 2.3 * math.exp(-0.35 * epoch * scale) + 0.25
    acc = 1 - 0.9 * math.exp(-0.45 * epoch * scale)
    return {
        "loss": loss,
        "accuracy": acc,
        "val_loss": loss * 1.12 + 0.03,
        "val_accuracy": acc * 0.95,
        "learning_rate": 0.003 * (1 - epoch / (EPOCHS + 1)),
    }


def _train_job(
    session: Session,
    *,
    name: str | None,
    spec: dict,
    tags: dict[str, str],
    scale: float,
    epochs_done: int,
    minutes_ago: int,
) -> Job:
    job = create_job(
        session,
        job_type="train",
        tenant=TENANT,
        queue="train",
        dataset={"source": "synthetic", "num_examples": 2000},
        spec=spec,
        name=name,
        tags=tags,
    )
    job.created_at = utcnow() - timedelta(minutes=minutes_ago + 1)
    session.flush()
    assert transition(
        session,
        job.id,
        JobStatus.RUNNING,
        reason="claimed",
        values={
            "started_at": utcnow() - timedelta(minutes=minutes_ago),
            "worker_id": f"{WORKER}/4242",
            "last_heartbeat_at": utcnow(),
        },
    )
    for epoch in range(1, epochs_done + 1):
        values = _curve(epoch, scale)
        upsert_metrics(session, job.id, "epoch", epoch, values)
        for step in range(STEP_EVERY, STEPS_PER_EPOCH + 1, STEP_EVERY):
            global_step = (epoch - 1) * STEPS_PER_EPOCH + step
            loss = _curve(epoch - 1 + step / STEPS_PER_EPOCH, scale)["loss"]
            upsert_metrics(
                session, job.id, "step", global_step, {"loss": loss + 0.05 * math.sin(step)}
            )
    job.progress = {
        "epoch": epochs_done,
        "epochs": spec["epochs"],
        "step": STEPS_PER_EPOCH,
        "steps_per_epoch": STEPS_PER_EPOCH,
        "global_step": epochs_done * STEPS_PER_EPOCH,
        "images_per_sec": 1834.5,
        "eta_seconds": 95.0 * (spec["epochs"] - epochs_done),
    }
    job.latest_metrics = _curve(epochs_done, scale) if epochs_done else None
    return job


def seed(factory: sessionmaker[Session], store: ObjectStore) -> Seeded:
    with factory() as session:
        _, key = create_key(session, TENANT, name="dashboard e2e")
        out = Seeded(key=key)
        base_spec = TrainSpec(epochs=EPOCHS, learning_rate=0.003, width=0.5, batch_size=64)
        out.spec = base_spec.model_dump(mode="json")
        wider_spec = base_spec.model_copy(update={"width": 1.0, "learning_rate": 0.001})

        # a finished training job with a model (keras + savedmodel files) and checkpoints
        baseline = _train_job(
            session,
            name="baseline-alexnet",
            spec=out.spec,
            tags={"team": "vision", "sweep": "a"},
            scale=1.0,
            epochs_done=EPOCHS,
            minutes_ago=50,
        )
        out.baseline = baseline.id
        out.step_rows = EPOCHS * STEPS_PER_EPOCH // STEP_EVERY
        model = Model(
            job_id=baseline.id,
            tenant=TENANT,
            name="baseline-alexnet",
            metrics=_curve(EPOCHS, 1.0),
            class_names=CLASS_NAMES,
        )
        session.add(model)
        session.flush()
        out.model_id = model.id
        files = []
        for epoch in (EPOCHS - 1, EPOCHS):
            obj = store.put_bytes(f"jobs/{baseline.id}/checkpoints/epoch-{epoch}.keras", b"c" * 900)
            files.append(("checkpoint", obj, epoch, None))
        keras = store.put_bytes(f"models/{model.id}/model.keras", MODEL_BYTES)
        out.model_sha256 = keras.sha256
        files.append(("model-keras", keras, None, model.id))
        saved = store.put_bytes(f"models/{model.id}/savedmodel.zip", MODEL_BYTES * 2)
        files.append(("model-savedmodel", saved, None, model.id))
        for kind, obj, epoch, model_id in files:
            session.add(
                stored_artifact(obj, job_id=baseline.id, kind=kind, model_id=model_id, epoch=epoch)
            )
        assert transition(
            session,
            baseline.id,
            JobStatus.SUCCEEDED,
            reason="finished",
            values={"model_id": model.id, "result": {"final": _curve(EPOCHS, 1.0)}},
        )

        # a second finished training job with other hyperparameters (for compare)
        wider = _train_job(
            session,
            name="wider-alexnet",
            spec=wider_spec.model_dump(mode="json"),
            tags={"team": "vision", "sweep": "b"},
            scale=1.3,
            epochs_done=EPOCHS,
            minutes_ago=40,
        )
        out.wider = wider.id
        assert transition(
            session,
            wider.id,
            JobStatus.SUCCEEDED,
            reason="finished",
            values={"result": {"final": _curve(EPOCHS, 1.3)}},
        )

        # a failed job with an error (and a name and tags that are HTML)
        failed = _train_job(
            session,
            name=HOSTILE_NAME,
            spec=out.spec,
            tags={"<script>": "</td><b>x</b>"},
            scale=0.5,
            epochs_done=1,
            minutes_ago=30,
        )
        out.failed = out.hostile = failed.id
        assert transition(
            session,
            failed.id,
            JobStatus.FAILED,
            reason="error",
            values={"error": "ResourceExhaustedError: OOM when allocating tensor <4096x4096>"},
        )

        # the evaluation of the baseline model: a 10x10 confusion matrix
        evaluation = create_job(
            session,
            job_type="evaluate",
            tenant=TENANT,
            queue="evaluate",
            dataset={"source": "synthetic", "num_examples": 1000},
            model_id=model.id,
            name="eval-baseline",
            tags={"team": "vision"},
        )
        evaluation.created_at = utcnow() - timedelta(minutes=20)
        session.flush()
        matrix = [[80 if i == j else (i * 3 + j) % 5 for j in range(10)] for i in range(10)]
        per_class = [row[i] / sum(row) for i, row in enumerate(matrix)]
        total = sum(map(sum, matrix))
        assert transition(
            session,
            evaluation.id,
            JobStatus.RUNNING,
            values={"started_at": utcnow() - timedelta(minutes=19), "worker_id": f"{WORKER}/1"},
        )
        assert transition(
            session,
            evaluation.id,
            JobStatus.SUCCEEDED,
            values={
                "result": {
                    "loss": 0.61,
                    "accuracy": sum(matrix[i][i] for i in range(10)) / total,
                    "per_class_accuracy": per_class,
                    "confusion_matrix": matrix,
                    "class_names": CLASS_NAMES,
                    "num_examples": total,
                },
                "latest_metrics": {"loss": 0.61},
            },
        )
        out.evaluation = evaluation.id

        # a running job (2 of 6 epochs) the test will advance, and a queued one to cancel
        running = _train_job(
            session,
            name="running-alexnet",
            spec=out.spec,
            tags={"team": "vision", "sweep": "c"},
            scale=1.0,
            epochs_done=2,
            minutes_ago=5,
        )
        out.running = running.id
        queued = create_job(
            session,
            job_type="train",
            tenant=TENANT,
            queue="train",
            dataset={"source": "synthetic", "num_examples": 2000},
            spec=out.spec,
            name="waiting-in-line",
            tags={"team": "nlp"},
        )
        out.queued = queued.id

        report_alive(
            session,
            WorkerInfo(WORKER, "node7", 4242, ["evaluate", "train"], "gpu", ["GPU 0: NVIDIA H100"]),
        )
        session.commit()
        return out


def advance_running_job(factory: sessionmaker[Session], job_id: str, epoch: int) -> None:
    """What the worker's reporter would write at the end of `epoch`."""
    with factory() as session:
        values = _curve(epoch, 1.0)
        upsert_metrics(session, job_id, "epoch", epoch, values)
        job = session.get(Job, job_id)
        assert job is not None
        job.progress = {**(job.progress or {}), "epoch": epoch, "eta_seconds": 95.0}
        job.latest_metrics = values
        job.last_heartbeat_at = utcnow()
        session.commit()


def finish_running_job(factory: sessionmaker[Session], job_id: str) -> None:
    with factory() as session:
        assert transition(session, job_id, JobStatus.SUCCEEDED, reason="finished")
        session.commit()


def set_phase(factory: sessionmaker[Session], job_id: str, phase: str) -> None:
    """What the worker writes when its job moves on to `phase` (the rest of progress kept)."""
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.progress = {**(job.progress or {}), "phase": phase}
        job.last_heartbeat_at = utcnow()
        session.commit()


def running_evaluation(factory: sessionmaker[Session], model_id: str) -> str:
    """An evaluation job that a worker has just claimed (phase `loading`)."""
    with factory() as session:
        job = create_job(
            session,
            job_type="evaluate",
            tenant=TENANT,
            queue="evaluate",
            dataset={"source": "synthetic", "num_examples": 1000},
            model_id=model_id,
            name="eval-in-progress",
        )
        session.flush()
        assert transition(
            session,
            job.id,
            JobStatus.RUNNING,
            values={"worker_id": f"{WORKER}/2", "progress": {"phase": "loading"}},
        )
        session.commit()
        return job.id


def forget_job(factory: sessionmaker[Session], job_id: str) -> None:
    """Remove a job a test added, so that the seeded set stays as the other tests know it."""
    with factory() as session:
        session.execute(delete(Job).where(Job.id == job_id))
        session.commit()
