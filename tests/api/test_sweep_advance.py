"""Sweep decisions applied to the database (SQLite and PostgreSQL), with epoch metrics written
the way workers write them: ASHA stops the trials behind at the first rung (cancelling, marked
stopped early), a repeated pass changes nothing, a freed slot starts the next trial, and the
sweep ends with the best trial that ran to the end."""

from __future__ import annotations

from sqlalchemy import func, select

from tass.contract.statuses import JobStatus
from tass.core.job_results import upsert_metrics
from tass.core.job_transitions import transition
from tass.core.models import JobTransition, utcnow
from tass.core.sweeps import advance_sweep, advance_sweeps

BODY = {
    "name": "asha",
    "spec": {"epochs": 3, "width": 0.25},
    "dataset": {"source": "synthetic", "num_examples": 100},
    "method": "random",
    "parameters": {"learning_rate": {"distribution": "log_uniform", "min": 0.001, "max": 0.5}},
    "objective": {"metric": "val_accuracy", "goal": "maximize"},
    "max_trials": 5,
    "max_parallel": 4,
    "early_stopping": {"type": "asha", "min_epochs": 1, "reduction_factor": 2},
}


def start(db, job_ids: list[str]) -> None:
    with db() as session:
        for job_id in job_ids:
            assert transition(session, job_id, JobStatus.RUNNING, values={"started_at": utcnow()})
        session.commit()


def report(db, job_id: str, epoch: int, value: float) -> None:
    """One epoch's metrics, in its own transaction, as a worker writes them."""
    with db() as session:
        upsert_metrics(session, job_id, "epoch", epoch, {"val_accuracy": value, "loss": 1.0})
        session.commit()


def end(db, job_id: str, status: JobStatus, **values: object) -> None:
    with db() as session:
        assert transition(session, job_id, status, values=values or None)
        session.commit()


def history_size(db) -> int:
    with db() as session:
        return session.scalar(select(func.count()).select_from(JobTransition))


def test_asha_on_the_database(client, db, settings, drain_tasks):
    sweep = client.post("/v1/sweeps", json=BODY).json()
    ids = [t["job_id"] for t in sweep["trials"]]
    assert len(ids) == 4 and len(drain_tasks()) == 4
    start(db, ids)
    for job_id, value in zip(ids, [0.70, 0.80, 0.20, 0.10], strict=True):
        report(db, job_id, 1, value)

    assert advance_sweeps(db, settings) == []
    trials = client.get(f"/v1/sweeps/{sweep['id']}").json()["trials"]
    assert [(t["status"], t["stopped_early"]) for t in trials] == [
        ("running", False),
        ("running", False),
        ("cancelling", True),
        ("cancelling", True),
    ]
    before = history_size(db)
    with db() as session:
        assert advance_sweep(session, sweep["id"], settings) == []
        session.commit()
    assert history_size(db) == before, "a repeated decision changes nothing"

    end(db, ids[2], JobStatus.CANCELLED)  # the worker stops it within a batch
    end(db, ids[3], JobStatus.CANCELLED)
    started = advance_sweeps(db, settings)
    assert len(started) == 1, "one freed slot, one trial left to run"
    new_id = started[0].job_id

    for epoch, (a, b) in enumerate([(0.85, 0.90), (0.88, 0.86)], start=2):
        report(db, ids[0], epoch, a)
        report(db, ids[1], epoch, b)
    start(db, [new_id])
    report(db, new_id, 1, 0.05)
    advance_sweeps(db, settings)
    end(db, new_id, JobStatus.CANCELLED)
    end(db, ids[0], JobStatus.SUCCEEDED, model_id="model-a")
    end(db, ids[1], JobStatus.SUCCEEDED, model_id="model-b")
    assert advance_sweeps(db, settings) == []

    done = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert done["status"] == "succeeded"
    assert done["trials"][4]["stopped_early"] is True
    assert done["best"]["job_id"] == ids[0] and done["best"]["model_id"] == "model-a"
    assert done["best"]["value"] == 0.88
    assert done["trials"][1]["best_value"] == 0.90 and done["trials"][1]["final_value"] == 0.86
