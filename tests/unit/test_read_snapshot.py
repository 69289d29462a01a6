"""A read-only session sees one snapshot for all its queries: a job row and its transitions,
read by two statements, never straddle another request's commit (a long-poll once answered
`queued` with a `cancelled` transition, on PostgreSQL's per-statement READ COMMITTED)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tass.contract.statuses import JobType
from tass.core.db import make_engine, make_session_factory, read_only_sessions
from tass.core.job_lifecycle import NewJob, request_cancel, submit
from tass.core.models import Job
from tass.core.settings import Settings
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database


def _reads_one_snapshot(url: str) -> None:
    upgrade(url)
    factory = make_session_factory(make_engine(url))
    with factory() as session:
        new = NewJob(JobType.TRAIN, "t", {"source": "synthetic"}, spec={})
        job_id = submit(session, new, Settings(), scope="t").job.id
        session.commit()
    with read_only_sessions(factory)() as reader:
        status = reader.scalar(select(Job.status).where(Job.id == job_id))
        with factory() as writer:  # another request cancels it meanwhile
            assert request_cancel(writer, job_id)
            writer.commit()
        job = reader.get(Job, job_id)
        assert job is not None
        shown = [t.status for t in job.transitions]
    assert status == "queued" and job.status == "queued" and shown == ["queued"]
    with read_only_sessions(factory)() as later:
        assert later.scalar(select(Job.status).where(Job.id == job_id)) == "cancelled"


@pytest.mark.postgres
def test_a_read_only_session_reads_one_snapshot_on_postgresql(pg_url: str) -> None:
    with scratch_database(pg_url) as url:
        _reads_one_snapshot(url)


def test_a_read_only_session_reads_one_snapshot_on_sqlite(tmp_path) -> None:
    _reads_one_snapshot(f"sqlite:///{tmp_path / 'tass.db'}")
