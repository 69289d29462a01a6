"""Garbage collection of uploaded datasets: an archive no dataset row names is deleted once
it is over an hour old (an upload cut off between storing and recording); a recorded one, or a
fresh one whose upload may be recording it right now, is kept."""

from __future__ import annotations

import os
import subprocess
import sys
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


CRASHING_UPLOAD = """
import asyncio, os, sys
from tass.core.objectstore import ObjectStore

async def parts():
    yield b"x" * (6 * 1024 * 1024)  # more than one part: the staging file is written
    await asyncio.sleep(0.5)
    os._exit(1)  # the API process dies mid-upload

asyncio.run(ObjectStore(sys.argv[1]).put_stream(sys.argv[2], parts()))
"""


def crashed_upload(ctx: WorkerContext, age_seconds: float) -> Path:
    """The partial file a real streamed upload leaves when its process dies, aged."""
    key = dataset_key(new_id(), "tar.gz")
    url = ctx.settings.resolved_artifact_url
    subprocess.run([sys.executable, "-c", CRASHING_UPLOAD, url, key], timeout=60, check=False)
    folder = ctx.settings.data_dir / "artifacts" / key.rsplit("/", 1)[0]
    (staging,) = list(folder.iterdir())
    assert staging.name.startswith("archive.tar.gz#") and not ctx.store.exists(key)
    then = time.time() - age_seconds
    os.utime(staging, (then, then))
    return staging


def test_a_crashed_uploads_stale_staging_file_is_collected(ctx: WorkerContext) -> None:
    stale = crashed_upload(ctx, age_seconds=7200)
    recent = crashed_upload(ctx, age_seconds=60)  # may still be an upload in progress
    root = ctx.settings.data_dir / "artifacts"
    key = stale.relative_to(root).as_posix()
    planned = collect_garbage(ctx.sessions, ctx.store, "all", dry_run=True)
    assert [(item.key, item.size) for item in planned] == [(key, stale.stat().st_size)]
    assert stale.exists()
    collected = collect_garbage(ctx.sessions, ctx.store, "all")
    assert [(item.key, item.reason) for item in collected] == [
        (key, "staging: an unfinished upload's partial file")
    ]
    assert not stale.exists() and recent.exists()
