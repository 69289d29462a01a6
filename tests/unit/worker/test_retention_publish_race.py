"""Garbage collection on PostgreSQL never deletes a model published while it runs: a publish
(the model's artifact row and the job's success, one transaction) that commits between the
collector's reads leaves the model recorded, not orphaned. (SQLite serialises the two.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from tass.core.db import make_engine, make_session_factory
from tass.core.models import Artifact, Job
from tass.core.objectstore import ObjectStore
from tass.core.retention import collect_garbage
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url) -> Iterator[str]:
    with scratch_database(pg_url) as url:
        upgrade(url)
        yield url


def test_a_model_published_during_collection_is_kept(pg: str, tmp_path: Path) -> None:
    engine = make_engine(pg)
    factory = make_session_factory(engine)
    store = ObjectStore((tmp_path / "artifacts").as_uri())
    with factory.begin() as session:
        job = Job(type="train", tenant="t", status="running", queue="train", dataset={}, attempt=1)
        session.add(job)
        session.flush()
        job_id = job.id
    key = f"models/{job_id}/attempt-1/model.keras"
    stored = store.put_bytes(key, b"the trained model")  # uploaded; the publish is pending

    def publish() -> None:
        with factory.begin() as session:
            session.add(
                Artifact(
                    job_id=job_id, kind="model", key=key, size=stored.size, sha256=stored.sha256
                )
            )
            session.execute(update(Job).where(Job.id == job_id).values(status="succeeded"))

    reads: list[str] = []

    def after_read(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)
            if len(reads) == 1:
                publish()  # commits between the collector's first and second read

    event.listen(engine, "after_cursor_execute", after_read)
    try:
        garbage = collect_garbage(factory, store, "all")
    finally:
        event.remove(engine, "after_cursor_execute", after_read)

    assert len(reads) >= 2, "the publish did not land between two reads"
    assert [g.key for g in garbage] == []
    assert store.exists(key)
    with factory() as session:
        assert session.scalar(select(Artifact.key).where(Artifact.job_id == job_id)) == key
    engine.dispose()
