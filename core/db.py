"""Engine and session construction; nothing connects at import time."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, TypeAlias, cast

from sqlalchemy import Connection, CursorResult, Engine, Executable, create_engine, event, text

# The database types and errors that code outside core names (api, worker and serving never
# import SQLAlchemy themselves: an import contract in pyproject.toml says so).
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError as DuplicateRow
from sqlalchemy.exc import OperationalError as DatabaseUnavailable
from sqlalchemy.exc import SQLAlchemyError as DatabaseError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

__all__ = [
    "POOL_OVERFLOW",
    "READ_ONLY",
    "ClosingSession",
    "DBAPIError",
    "DatabaseError",
    "DatabaseUnavailable",
    "DuplicateRow",
    "Engine",
    "PoolTimeout",
    "Session",
    "SessionFactory",
    "after_commit",
    "changed_rows",
    "make_engine",
    "make_session_factory",
    "ping_database",
    "read_only_sessions",
    "session_scope",
]

SessionFactory: TypeAlias = sessionmaker[Session]
log = logging.getLogger(__name__)

# connections a pool may open beyond pool_size (for the odd session outside the thread pool)
POOL_OVERFLOW = 8


# An execution option marking sessions that only read (the API's GET/HEAD requests): on SQLite
# they begin DEFERRED, so they run beside the writer (WAL) instead of queueing for its lock.
READ_ONLY = "tass_read_only"


def make_engine(url: str, *, pool_size: int | None = None, **kwargs: object) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and foreign keys.

    `pool_size` is the number of connections kept (plus a few of overflow): a process that
    runs its queries on N threads passes N, so no thread ever waits for a connection."""
    if pool_size is not None:
        kwargs = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW, **kwargs}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Let SQLAlchemy, not the sqlite3 module, start transactions (so SAVEPOINTs work).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A session that may write takes the write lock up front (IMMEDIATE): the API and the worker
    # processes then queue on busy_timeout instead of failing when a read transaction later
    # tries to write. A read-only session begins DEFERRED: under WAL it reads a snapshot beside
    # the writer and never takes, or waits for, the write lock.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


class ClosingSession(Session):
    """A Session that calls `on_close`, when set, each time it is closed (from whatever
    thread closes it): the API gives a request's open-session slot back then, not when the
    request ends (api.deps.get_session)."""

    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        super().close()
        if self.on_close is not None:
            self.on_close()


_AFTER_COMMIT = "tass_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's current transaction has committed; never if it rolls
    back. For what must follow the commit and cannot be undone (deleting a stored object that
    a row named, sending a task that reads the row): whoever owns the transaction commits (in
    a request, `api.deps.get_session` when the handler returns), and the actions run then, in
    the order registered. The change is committed by then, so an action that fails is logged
    and does not turn it into an error (a stored object left behind is garbage `tass gc`
    finds; a task not sent is sent again by the housekeeping that looks for unstarted work)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction around it has not committed yet
    for action in session.info.pop(_AFTER_COMMIT, ()):
        try:
            action()
        except Exception:
            log.exception("an action after a commit failed (the change is committed)")


@event.listens_for(Session, "after_transaction_end")
def _forget_after_commit(session: Session, transaction: SessionTransaction) -> None:
    """The outermost transaction ended without a commit (a rolled-back savepoint keeps them)."""
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that may write (on SQLite each transaction takes the write lock at BEGIN)."""
    return sessionmaker(engine, class_=ClosingSession, expire_on_commit=False)


@lru_cache(maxsize=16)
def read_only_sessions(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions like `factory`'s that only read: same pool, and every query of a session sees
    one snapshot, so a job row and its transitions (two queries) never straddle a commit. On
    SQLite a DEFERRED transaction (WAL: a snapshot from its first read) that never takes the
    write lock; on PostgreSQL a READ ONLY transaction at REPEATABLE READ (READ COMMITTED would
    give each statement its own snapshot). A factory bound to a Connection (a test's outer
    transaction) is returned as it is."""
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):
        return factory
    options: dict[str, object] = {READ_ONLY: True}
    if bind.dialect.name == "postgresql":
        options |= {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return sessionmaker(
        class_=factory.class_, **{**factory.kw, "bind": bind.execution_options(**options)}
    )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def changed_rows(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE (without RETURNING) and return how many rows it changed."""
    # Session.execute is typed as returning Result, which has no rowcount; for a DML statement
    # it returns a CursorResult (the cast SQLAlchemy's 2.0 changelog recommends).
    return cast("CursorResult[Any]", session.execute(statement)).rowcount


def ping_database(engine: Engine) -> None:
    """Raise unless the database answers a trivial query (the readiness probe)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
