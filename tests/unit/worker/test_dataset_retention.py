"""Garbage collection of uploaded datasets: an archive no dataset row names is deleted once
it is over an hour old (an upload cut off between storing and recording); a recorded one, or a
fresh one whose upload may be recording it right now, is kept."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tass.core.datasets import create_dataset, dataset_key
from tass.core.models import new_id
from tass.core.retention import collect_garbage
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.context import WorkerContext


@pytest.fixture
def ctx(tmp_path: Path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def stored(ctx: WorkerContext, age_seconds: float) -> str:
    key = dataset_key(new_id(), "tar.gz")
    ctx.store.put_bytes(key, b"archive bytes")
    then = time.time() - age_seconds
    os.utime(ctx.settings.data_dir / "artifacts" / key, (then, then))
    return key


def test_only_old_unrecorded_uploads_are_collected(ctx: WorkerContext) -> None:
    orphan = stored(ctx, age_seconds=7200)
    fresh = stored(ctx, age_seconds=60)
    recorded = stored(ctx, age_seconds=7200)
    with ctx.sessions.begin() as session:
        create_dataset(
            session,
            id=recorded.split("/")[1],
            tenant="t",
            name="kept",
            archive_format="tar.gz",
            key=recorded,
            size=13,
            sha256="0" * 64,
        )
    listed = collect_garbage(ctx.sessions, ctx.store, "all", dry_run=True)
    assert [item.key for item in listed] == [orphan]
    assert ctx.store.exists(orphan)
    collected = collect_garbage(ctx.sessions, ctx.store, "all")
    assert [(item.key, item.reason) for item in collected] == [
        (orphan, "orphan: no dataset names this upload")
    ]
    assert not ctx.store.exists(orphan)
    assert ctx.store.exists(fresh) and ctx.store.exists(recorded)
