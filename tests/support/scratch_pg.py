"""A PostgreSQL database of one test's own, for tests that leave jobs behind (queued, running)
which would otherwise show up in other tests' counts on the session-wide database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def scratch_database(session_url: str) -> Iterator[str]:
    """Create an empty database beside the one at `session_url`; drop it afterwards."""
    name = f"tass_scratch_{uuid.uuid4().hex[:10]}"
    base = session_url.rsplit("/", 1)[0]
    admin = f"{base}/postgres".replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
