"""On PostgreSQL a delete of an uploaded dataset and a job submitted on it at the same moment
are serialised by row locks: the delete waits for the submit to commit, then sees the job and
refuses (409), instead of deleting the archive under a queued job."""

from __future__ import annotations

import threading

import pytest

from tass.core.datasets import (
    EXCLUSIVE,
    create_dataset,
    get_dataset,
    record_validation,
    usable_dataset,
    users_of,
)
from tass.core.db import make_engine, make_session_factory
from tass.core.models import Job
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres
SUMMARY = {"num_examples": 2, "classes": ["a", "b"], "class_counts": {}, "image_sizes": {}}


def test_a_delete_waits_for_a_submit_naming_the_dataset(pg_url: str) -> None:
    with scratch_database(pg_url) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            dataset = create_dataset(
                session,
                tenant="t",
                name="pets",
                archive_format="zip",
                key="datasets/x/archive.zip",
                size=1,
                sha256="0" * 64,
            )
            record_validation(session, dataset.id, SUMMARY, None)
            dataset_id = dataset.id
        submit = factory()
        usable_dataset(submit, dataset_id, "t", None)
        job = Job(
            type="train",
            status="queued",
            tenant="t",
            queue="train",
            dataset={"source": "dataset", "id": dataset_id},
        )
        submit.add(job)
        submit.flush()
        seen: dict[str, list[str]] = {}

        def delete() -> None:
            with factory() as session:
                locked = get_dataset(session, dataset_id, "t", lock=EXCLUSIVE)
                assert locked is not None
                seen["users"] = users_of(session, locked)

        deleter = threading.Thread(target=delete)
        deleter.start()
        deleter.join(1.0)
        assert deleter.is_alive(), "the delete did not wait for the submit's lock"
        submit.commit()
        submit.close()
        deleter.join(10)
        assert seen["users"] == [f"job {job.id}"]
        engine.dispose()
