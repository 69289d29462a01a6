"""On PostgreSQL two registrations of one tenant at the same moment count one after the other,
so the per-tenant webhook cap cannot be overshot (the second waits for the first to commit
and then counts its webhook)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tass.core.db import SessionFactory, make_engine, make_session_factory
from tass.core.webhooks import count_webhooks, create_webhook
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def factory(pg_url) -> Iterator[SessionFactory]:
    with scratch_database(pg_url) as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


def test_a_second_registration_counts_after_the_first_commits(factory):
    first = factory()
    assert count_webhooks(first, "acme") == 0
    create_webhook(first, tenant="acme", url="https://a.example/x", events=[], description=None)
    counted: list[int] = []

    def second() -> None:
        with factory() as session:
            counted.append(count_webhooks(session, "acme"))
            session.rollback()

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive(), "the second count did not wait for the first registration"
    first.commit()
    first.close()
    thread.join(10)
    assert counted == [1]

    with factory() as other:  # another tenant never waits
        assert count_webhooks(other, "globex") == 0
