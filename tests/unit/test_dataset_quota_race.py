"""On PostgreSQL two uploads of one tenant that record at the same moment cannot both fit
under the dataset quota: the second one's check waits for the first's insert to commit, then
counts it and is refused (before, both summed the same stored bytes and both were inserted)."""

from __future__ import annotations

import threading

import pytest

from tass.core.datasets import DatasetQuotaExceeded, add_within_quota, stored_bytes
from tass.core.db import make_engine, make_session_factory
from tass.core.models import new_id
from tass.migrations.runner import upgrade
from tests.support.scratch_pg import scratch_database

pytestmark = pytest.mark.postgres
QUOTA = 100


def values(tenant: str, size: int) -> dict[str, object]:
    dataset_id = new_id()
    return {
        "id": dataset_id,
        "tenant": tenant,
        "name": "pets",
        "archive_format": "zip",
        "key": f"datasets/{dataset_id}/archive.zip",
        "size": size,
        "sha256": "0" * 64,
    }


def test_concurrent_uploads_never_overshoot_the_quota(pg_url: str) -> None:
    with scratch_database(pg_url) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        first = factory()
        add_within_quota(first, QUOTA, **values("t", 60))  # recorded, not yet committed
        outcome: dict[str, object] = {}

        def second_upload() -> None:
            with factory() as session:
                try:
                    add_within_quota(session, QUOTA, **values("t", 60))
                    session.commit()
                    outcome["result"] = "inserted"
                except DatasetQuotaExceeded as exc:
                    outcome["result"] = f"refused, {exc.stored} stored"

        other_tenant = factory()
        add_within_quota(other_tenant, QUOTA, **values("u", 60))  # another tenant: no wait
        other_tenant.commit()
        other_tenant.close()
        second = threading.Thread(target=second_upload)
        second.start()
        second.join(1.0)
        assert second.is_alive(), "the second upload did not wait for the first one's insert"
        first.commit()
        first.close()
        second.join(10)
        assert outcome == {"result": "refused, 60 stored"}
        with factory() as session:
            assert stored_bytes(session, "t") == 60
        engine.dispose()
