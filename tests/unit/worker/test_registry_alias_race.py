"""On PostgreSQL deleting a registry version and pointing an alias at it at the same moment
never removes the alias silently (the ON DELETE CASCADE): the delete either sees the alias
and refuses (409) or wins and the alias finds no version (404)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tass.core.db import SessionFactory, make_engine, make_session_factory
from tass.core.models import Job, Model, ModelAlias, ModelVersion
from tass.core.registry import VersionInUse, delete_version, get_registered, register_version
from tass.core.registry import set_alias as point_alias
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def factory(pg_url) -> Iterator[SessionFactory]:
    with scratch_database(pg_url) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory.begin() as session:
            job = Job(type="train", tenant="t", status="succeeded", queue="train", dataset={})
            session.add(job)
            session.flush()
            model = Model(job_id=job.id, tenant="t", name="m", metrics={})
            session.add(model)
            session.flush()
            register_version(session, "t", "pets", model)
        yield factory
        engine.dispose()


def in_thread(work: Any) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as exc:  # the outcome is what the test checks
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_delete_racing_an_alias_set_sees_it_and_refuses(factory):
    setter = factory()
    registered = get_registered(setter, "t", "pets")
    assert registered is not None and point_alias(setter, registered, "prod", 1)

    def delete() -> bool:
        with factory() as session:
            target = get_registered(session, "t", "pets")
            assert target is not None
            deleted = delete_version(session, target, 1)
            session.commit()
            return deleted

    thread, outcome = in_thread(delete)
    thread.join(1.0)
    assert thread.is_alive(), "the delete did not wait for the alias being set"
    setter.commit()
    setter.close()
    thread.join(10)

    assert isinstance(outcome.get("error"), VersionInUse), outcome
    with factory() as session:
        assert session.scalars(select(ModelAlias.alias)).all() == ["prod"]
        assert session.scalars(select(ModelVersion.version)).all() == [1]


def test_an_alias_set_racing_a_delete_finds_no_version(factory):
    deleter = factory()
    registered = get_registered(deleter, "t", "pets")
    assert registered is not None and delete_version(deleter, registered, 1)

    def set_alias() -> bool:
        with factory() as session:
            target = get_registered(session, "t", "pets")
            assert target is not None
            moved = point_alias(session, target, "prod", 1)
            session.commit()
            return moved

    thread, outcome = in_thread(set_alias)
    thread.join(1.0)
    assert thread.is_alive(), "the alias did not wait for the delete"
    deleter.commit()
    deleter.close()
    thread.join(10)

    assert outcome == {"value": False}
    with factory() as session:
        assert session.scalars(select(ModelAlias.alias)).all() == []
