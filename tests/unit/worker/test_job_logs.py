"""A job's output (stdout, stderr, logging, native code) is captured into its log, bounded,
with secrets masked, and a failed job's error names the traceback's line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tass.core.job_logs import read_log, tail_log
from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tass.worker.claim import fail
from tass.worker.context import WorkerContext
from tass.worker.log_capture import LogShipper, capture_job_logs
from tests.support.worker_jobs import claimed_job


@pytest.fixture
def ctx(tmp_path, database_url) -> WorkerContext:
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        broker_url="memory://",
        job_log_flush_seconds=0.05,
        job_log_max_mb=0.02,  # 20 KB
    )
    upgrade(settings.resolved_database_url)
    return WorkerContext(settings)


def lines_of(ctx: WorkerContext, job_id: str, **kwargs) -> list[dict]:
    with ctx.sessions() as session:
        return [item.as_dict() for item in read_log(session, ctx.store, job_id, **kwargs).items]


def test_every_stream_of_the_job_process_lands_in_its_log(ctx, monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-9f8e7d6c5b")
    job = claimed_job(ctx)
    streams = sys.stdout, sys.stderr
    with capture_job_logs(ctx, job.id, job.attempt):
        print("printed to stdout")
        print("printed to stderr", file=sys.stderr)
        logging.getLogger("tass.trainer.test").warning("through logging")
        os.write(1, b"written to fd 1 by native code\n")
        subprocess.run(["sh", "-c", "echo from a child process >&2"], check=True)
        print("the token is tok-9f8e7d6c5b, the db postgresql://u:hunter2secret@db/x")
    got = [(item["stream"], item["line"]) for item in lines_of(ctx, job.id)]
    assert ("stdout", "printed to stdout") in got
    assert ("stderr", "printed to stderr") in got
    assert ("stderr", "WARNING tass.trainer.test: through logging") in got
    assert ("stdout", "written to fd 1 by native code") in got
    assert ("stderr", "from a child process") in got
    assert ("stdout", "the token is ***, the db postgresql://u:***@db/x") in got
    items = lines_of(ctx, job.id)
    assert [item["offset"] for item in items] == list(range(len(items)))
    assert all(item["attempt"] == job.attempt and item["at"].endswith("Z") for item in items)
    # the process's own streams are back
    assert (sys.stdout, sys.stderr) == streams
    print("after the job")
    assert "after the job" not in [item["line"] for item in lines_of(ctx, job.id)]


def test_a_chatty_attempt_keeps_its_newest_output_and_says_what_it_dropped(ctx):
    job = claimed_job(ctx)
    with capture_job_logs(ctx, job.id, job.attempt) as capture:
        for batch in range(20):
            for n in range(40):
                print(f"batch {batch} line {n} " + "x" * 60)
            capture.sync()
    items = lines_of(ctx, job.id, limit=5000)
    assert items[0]["stream"] == "tass" and "were dropped" in items[0]["line"]
    assert items[-1]["line"].startswith("batch 19 line 39 ")
    kept = [item for item in items if item["stream"] == "stdout"]
    assert 100 <= len(kept) < 300  # ~20 KB of ~130-byte stored lines, whole chunks
    assert kept[-1]["offset"] == 799
    with ctx.sessions() as session:
        tail = tail_log(session, ctx.store, job.id, lines=3)
    assert [item.line.split(" x")[0] for item in tail.items] == [
        "batch 19 line 37",
        "batch 19 line 38",
        "batch 19 line 39",
    ]
    assert tail.next_offset == 800


def test_output_faster_than_the_store_is_dropped_oldest_first_and_noted():
    shipped: list = []
    failing = True

    def ship(lines):
        if failing:
            raise OSError("store down")
        shipped.extend(lines)
        return 0

    shipper = LogShipper(ship, str, flush_seconds=60)
    for n in range(100_000):
        shipper.add("stdout", b"%d " % n + b"y" * 100)
    assert not shipper.ship_pending()  # the store is down: kept for the next try
    failing = False
    assert shipper.ship_pending()
    assert shipped[0].stream == "tass" and "lines were dropped" in shipped[0].line
    assert shipped[-1].line.startswith("99999 ")
    assert len(shipped) < 100_000


def test_a_failed_jobs_error_names_the_line_its_traceback_starts_at(ctx):
    job = claimed_job(ctx)
    with capture_job_logs(ctx, job.id, job.attempt) as capture:
        print("training...")
        try:
            raise ValueError("the loss went NaN")
        except ValueError as exc:
            fail(ctx, job, exc, capture.sync)
    with ctx.sessions() as session:
        error = session.get(Job, job.id).error
    assert error.startswith("ValueError: the loss went NaN (traceback at line 1 of the job's log")
    items = lines_of(ctx, job.id, offset=1)
    assert "failed" in items[0]["line"]
    assert any(item["line"].startswith("Traceback") for item in items)


def test_logs_of_jobs_finished_long_ago_and_unindexed_chunks_are_collected(ctx, tmp_path):
    from datetime import datetime, timedelta, timezone
    from urllib.parse import urlparse

    from tass.core.job_logs import log_key
    from tass.core.retention import collect_garbage

    old, recent = claimed_job(ctx), claimed_job(ctx)
    for job in (old, recent):
        with capture_job_logs(ctx, job.id, job.attempt):
            print(f"output of {job.id}")
    with ctx.sessions.begin() as session:
        session.get(Job, old.id).status = "succeeded"
        session.get(Job, old.id).finished_at = datetime.now(timezone.utc) - timedelta(days=100)
        session.get(Job, recent.id).status = "succeeded"
        session.get(Job, recent.id).finished_at = datetime.now(timezone.utc)
    stray = log_key(recent.id, 1, 99)
    ctx.store.put_bytes(stray, b"[]\n")  # stored, then the worker died before indexing it
    two_hours_ago = (datetime.now(timezone.utc) - timedelta(hours=2)).timestamp()
    os.utime(Path(urlparse(ctx.store.url).path) / stray, (two_hours_ago, two_hours_ago))

    removed = collect_garbage(ctx.sessions, ctx.store, "all", keep_logs_days=90)
    assert {item.key for item in removed} == {log_key(old.id, 1, 0), stray}
    assert lines_of(ctx, old.id) == []
    assert [item["line"] for item in lines_of(ctx, recent.id)] == [f"output of {recent.id}"]
