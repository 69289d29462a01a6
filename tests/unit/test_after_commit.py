"""`after_commit`: what must follow a commit (deleting a stored object a row named, sending a
task that reads the row) runs once the owner of the transaction commits, never after a
rollback, and a failure then is logged without undoing or hiding the committed change."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from tass.core.db import after_commit, make_engine, make_session_factory
from tass.core.models import TenantSettings as Tenant
from tass.migrations.runner import upgrade


@pytest.fixture
def factory(tmp_path):
    url = f"sqlite:///{tmp_path / 'after-commit.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def test_actions_run_after_the_commit_in_order_and_see_the_committed_row(factory):
    seen: list[tuple[str, bool]] = []

    def committed(tag: str) -> None:
        with factory() as other:  # another connection: only a committed row is visible
            seen.append((tag, other.get(Tenant, "t1") is not None))

    with factory() as session:
        session.add(Tenant(name="t1"))
        after_commit(session, lambda: committed("first"))
        after_commit(session, lambda: committed("second"))
        session.flush()
        assert seen == []
        session.commit()
    assert seen == [("first", True), ("second", True)]


def test_a_rollback_drops_the_actions_and_the_next_commit_does_not_run_them(factory):
    ran: list[str] = []
    with factory() as session:
        session.add(Tenant(name="t2"))
        after_commit(session, lambda: ran.append("rolled back"))
        session.rollback()
        session.add(Tenant(name="t3"))
        session.commit()
    assert ran == []


def test_a_failing_action_is_logged_and_the_commit_stands(factory, caplog):
    def broken() -> None:
        raise OSError("the object store is unreachable")

    ran: list[str] = []
    with factory() as session, caplog.at_level(logging.ERROR, logger="tass.core.db"):
        session.add(Tenant(name="t4"))
        after_commit(session, broken)
        after_commit(session, lambda: ran.append("next"))
        session.commit()
    assert "an action after a commit failed" in caplog.text
    assert ran == ["next"]
    with factory() as session:
        assert session.scalars(select(Tenant.name).where(Tenant.name == "t4")).all() == ["t4"]


def test_a_rolled_back_savepoint_keeps_the_actions_of_the_transaction_around_it(factory):
    ran: list[str] = []
    with factory() as session:
        session.add(Tenant(name="t5"))
        after_commit(session, lambda: ran.append("outer"))
        with pytest.raises(ValueError), session.begin_nested():
            session.add(Tenant(name="t6"))
            raise ValueError("a race lost inside the request")
        with session.begin_nested():
            session.add(Tenant(name="t7"))
        assert ran == []  # a savepoint's release is not the commit
        session.commit()
    assert ran == ["outer"]
