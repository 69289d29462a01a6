"""Retention and garbage collection: a finished job keeps its last and best checkpoints, an
unfinished one keeps all; objects no record names are deleted once their attempt can no longer
record them; `tass gc --dry-run` lists the same without deleting anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from tass.client.cli import app
from tass.core.job_results import upsert_metrics
from tass.core.models import Artifact, Job
from tass.core.retention import collect_garbage
from tass.core.settings import Settings, get_settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext


@pytest.fixture
def ctx(tmp_path, monkeypatch) -> Iterator[WorkerContext]:
    monkeypatch.setenv("TASS_DATA_DIR", str(tmp_path))  # what `tass gc` reads
    for name in ("TASS_DATABASE_URL", "TASS_ARTIFACT_URL", "TASS_KEEP_CHECKPOINTS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    yield WorkerContext(settings)
    get_settings.cache_clear()


def add_job(ctx: WorkerContext, status: str, attempt: int = 1) -> str:
    with ctx.sessions.begin() as session:
        job = Job(
            type="train", tenant="t", status=status, queue="train", dataset={}, attempt=attempt
        )
        session.add(job)
        session.flush()
        return job.id


def checkpoint(ctx: WorkerContext, job_id: str, attempt: int, epoch: int, val_acc: float) -> None:
    """An epoch's checkpoint files, uploaded and recorded, with its epoch metrics."""
    with ctx.sessions.begin() as session:
        for name, kind in (("model.keras", "checkpoint"), ("state.json", "checkpoint-state")):
            key = f"jobs/{job_id}/attempt-{attempt}/checkpoints/epoch-{epoch:04d}/{name}"
            obj = ctx.store.put_bytes(key, f"{job_id} {epoch} {name}".encode())
            session.add(
                Artifact(
                    job_id=job_id, kind=kind, key=key, size=obj.size, sha256=obj.sha256, epoch=epoch
                )
            )
        upsert_metrics(session, job_id, "epoch", epoch, {"val_accuracy": val_acc})


def recorded_epochs(ctx: WorkerContext, job_id: str) -> list[int]:
    with ctx.sessions() as session:
        rows = session.scalars(
            select(Artifact.epoch).where(Artifact.job_id == job_id, Artifact.kind == "checkpoint")
        )
        return sorted(rows)


def scenario(ctx: WorkerContext) -> dict[str, str]:
    done = add_job(ctx, "succeeded", attempt=2)
    for epoch, acc in ((1, 0.5), (2, 0.9), (3, 0.7), (4, 0.8)):
        checkpoint(ctx, done, 1 if epoch < 3 else 2, epoch, acc)
    stale = f"jobs/{done}/attempt-1/checkpoints/epoch-0003/model.keras"
    ctx.store.put_bytes(stale, b"attempt 1 woke up after attempt 2 took over")
    failed_publish = f"models/{done}/attempt-1/model.keras"
    ctx.store.put_bytes(failed_publish, b"published after the lease was lost")

    running = add_job(ctx, "running", attempt=3)
    for epoch, acc in ((1, 0.4), (2, 0.6)):
        checkpoint(ctx, running, 3, epoch, acc)
    in_flight = f"jobs/{running}/attempt-3/checkpoints/epoch-0003/model.keras"
    ctx.store.put_bytes(in_flight, b"uploaded, row not written yet")
    old_attempt = f"jobs/{running}/attempt-2/checkpoints/epoch-0003/model.keras"
    ctx.store.put_bytes(old_attempt, b"an attempt the reaper gave up on")
    foreign = "backups/something-else.bin"
    ctx.store.put_bytes(foreign, b"not ours to judge")
    return {
        "done": done,
        "running": running,
        "stale": stale,
        "failed_publish": failed_publish,
        "in_flight": in_flight,
        "old_attempt": old_attempt,
        "foreign": foreign,
    }


def expected_deletions(keys: dict[str, str]) -> set[str]:
    done = keys["done"]
    return {
        keys["stale"],
        keys["failed_publish"],
        keys["old_attempt"],
        *(
            f"jobs/{done}/attempt-{a}/checkpoints/epoch-{e:04d}/{n}"
            for a, e in ((1, 1), (2, 3))
            for n in ("model.keras", "state.json")
        ),
    }


def test_a_dry_run_lists_what_a_real_run_then_deletes(ctx):
    keys = scenario(ctx)
    before = {obj.key for obj in ctx.store.list()}

    planned = collect_garbage(ctx.sessions, ctx.store, "last-and-best", dry_run=True)
    assert {item.key for item in planned} == expected_deletions(keys)
    assert {obj.key for obj in ctx.store.list()} == before
    assert recorded_epochs(ctx, keys["done"]) == [1, 2, 3, 4]

    deleted = collect_garbage(ctx.sessions, ctx.store, "last-and-best")
    assert {item.key for item in deleted} == expected_deletions(keys)
    assert {obj.key for obj in ctx.store.list()} == before - expected_deletions(keys)
    assert recorded_epochs(ctx, keys["done"]) == [2, 4]  # the best and the last
    assert recorded_epochs(ctx, keys["running"]) == [1, 2]  # unfinished: all kept
    assert ctx.store.exists(keys["in_flight"]) and ctx.store.exists(keys["foreign"])
    assert collect_garbage(ctx.sessions, ctx.store, "last-and-best") == []


def test_keep_all_and_keep_last(ctx):
    keys = scenario(ctx)
    collect_garbage(ctx.sessions, ctx.store, "all")
    assert recorded_epochs(ctx, keys["done"]) == [1, 2, 3, 4]
    assert not ctx.store.exists(keys["stale"])  # orphans go whatever the policy
    collect_garbage(ctx.sessions, ctx.store, "last")
    assert recorded_epochs(ctx, keys["done"]) == [4]


def test_tass_gc_dry_run_prints_what_it_would_delete(ctx):
    keys = scenario(ctx)
    result = CliRunner().invoke(app, ["gc", "--dry-run"])
    assert result.exit_code == 0, result.output
    for key in expected_deletions(keys):
        assert key in result.output
    assert keys["in_flight"] not in result.output
    assert "would delete 7 objects" in result.output
    assert ctx.store.exists(keys["stale"])
