"""Worker unit tests run on both databases: `database_url` is None (SQLite in the test's data
folder) or a scratch PostgreSQL database dropped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scratch_pg import scratch_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request) -> Iterator[str | None]:
    if request.param == "postgresql":
        with scratch_database(request.getfixturevalue("pg_url")) as url:
            yield url
    else:
        yield None
