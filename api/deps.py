"""Request dependencies: settings, a DB session that commits or rolls back, store, producer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from celery import Celery
from fastapi import Depends, Request

from tass.core.db import Session, read_only_sessions
from tass.core.objectstore import ObjectStore
from tass.core.settings import Settings

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def _finish(session: Session, failed: bool) -> None:
    try:
        if failed:
            session.rollback()
        else:
            session.commit()
    finally:
        session.close()


def _session_slots(request: Request) -> anyio.Semaphore:
    """The process's open-session cap (made at start-up; made here for an app built without
    its lifespan, as some tests do)."""
    state = request.app.state
    if getattr(state, "session_slots", None) is None:
        state.session_slots = anyio.Semaphore(state.settings.api_threads)
    return state.session_slots


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per handler: committed when the handler returns, rolled back on error,
    and closed before the response is sent (SessionDep has scope="function"), so a slow client
    reading a download or a long response never holds a connection or a database lock.
    GET and HEAD handlers only read: their session never takes SQLite's write lock.

    At most TASS_API_THREADS sessions are open at once per process (`session_slots`, waited
    for on the event loop, holding nothing). A session keeps at most one connection, and the
    pool has more than that many, so a request that holds a connection (and waits for a thread
    to serialize its response) never starves the threads that wait for one: the pool cannot
    deadlock against the thread pool, however many clients there are."""
    factory = request.app.state.session_factory
    if request.method in READ_ONLY_METHODS:
        factory = read_only_sessions(factory)
    async with _session_slots(request):
        session = factory()
        failed = False
        try:
            yield session
        except BaseException:
            failed = True
            raise
        finally:
            if not session.in_transaction():
                session.close()  # nothing to commit and no connection held: no thread needed
            else:
                with anyio.CancelScope(shield=True):  # commit/close on a thread of its own,
                    # as FastAPI exits sync dependencies: never queued behind handler threads
                    await anyio.to_thread.run_sync(
                        _finish, session, failed, limiter=anyio.CapacityLimiter(1)
                    )


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


async def get_producer(request: Request) -> Celery:
    return request.app.state.producer


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
ProducerDep = Annotated[Celery, Depends(get_producer)]
