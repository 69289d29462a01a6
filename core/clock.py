"""The one clock that leases, heartbeats and deadlines are measured on: the database server's.

Workers, the API and the reaper run on different hosts whose clocks drift; the database is the
one place they all meet, so every time that decides whether a job is alive or late is read
from it (PostgreSQL `now()`, SQLite's own clock for the embedded single-host setup)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def database_now(session: Session) -> datetime:
    """The database's current time (UTC, timezone-aware). On PostgreSQL this is the start of
    the current transaction, the same instant for every row the transaction writes."""
    if session.get_bind().dialect.name == "sqlite":
        text = session.execute(select(func.strftime("%Y-%m-%d %H:%M:%f", "now"))).scalar_one()
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return session.execute(select(func.now())).scalar_one().astimezone(timezone.utc)
