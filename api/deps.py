"""Request dependencies: settings, a DB session that commits or rolls back, store, producer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio
from celery import Celery
from fastapi import Depends, Request

from tass.core.db import ClosingSession, Session, read_only_sessions
from tass.core.objectstore import ObjectStore
from tass.core.settings import Settings

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
_READS_ONLY = "_tass_reads_only"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def reads_only(endpoint: Endpoint) -> Endpoint:
    """Marks the handler of a POST that only reads the database (predictions): its session
    is a read-only one, as a GET's is, so on SQLite it never queues for the write lock."""
    setattr(endpoint, _READS_ONLY, True)
    return endpoint


def session_reads_only(request: Request) -> bool:
    """Whether the request's session only reads: GET and HEAD, and handlers marked
    `reads_only`."""
    if request.method in READ_ONLY_METHODS:
        return True
    route = request.scope.get("route")
    return getattr(getattr(route, "endpoint", None), _READS_ONLY, False)


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


class SlotClaim:
    """One request's open-session slot, given back exactly once, from the event loop or from
    the worker thread that closed the session."""

    def __init__(self, slots: anyio.Semaphore) -> None:
        self._slots = slots
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._held = True

    def give_back(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        if threading.get_ident() == self._loop_thread:
            self._slots.release()
        else:
            self._loop.call_soon_threadsafe(self._slots.release)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per handler: committed when the handler returns, rolled back on error,
    and closed before the response is sent (SessionDep has scope="function"), so a slow client
    reading a download or a long response never holds a connection or a database lock.
    GET and HEAD handlers (and `reads_only` ones) only read: their session never takes
    SQLite's write lock. Any other request empties the process's read cache when its session
    ends (`ChangeFeed.changed_here`): a client reads its own writes from this process at once,
    not a notification later.

    At most TASS_API_THREADS sessions are open at once per process (`session_slots`, waited
    for on the event loop, holding nothing). A session keeps at most one connection, and the
    pool has one for each open session and one for each thread besides (a thread may open a
    short session of its own: a key lookup, a status read), so a request that holds a
    connection (and waits for a thread to serialize its response) never starves the threads
    that wait for one: the pool cannot deadlock against the thread pool, however many clients
    there are. A handler that closes its session early (an upload before the body streams, a
    prediction before the model runs) gives its slot back then, so waiting requests never
    hold slots."""
    factory = request.app.state.session_factory
    if session_reads_only(request):
        factory = read_only_sessions(factory)
    slots = _session_slots(request)
    await slots.acquire()
    claim = SlotClaim(slots)
    try:
        session = factory()
    except BaseException:
        claim.give_back()
        raise
    if isinstance(session, ClosingSession):
        session.on_close = claim.give_back
    failed = False
    try:
        yield session
    except BaseException:
        failed = True
        raise
    finally:
        try:
            if not session.in_transaction():
                session.close()  # nothing to commit and no connection held: no thread needed
            else:
                with anyio.CancelScope(shield=True):  # commit/close on a thread of its own,
                    # as FastAPI exits sync dependencies: never queued behind handler threads
                    await anyio.to_thread.run_sync(
                        _finish, session, failed, limiter=anyio.CapacityLimiter(1)
                    )
        finally:
            claim.give_back()
            if not session_reads_only(request):  # it may have committed (itself, or above)
                request.app.state.change_feed.changed_here()


# get_session for a handler that opens its session itself, after the request body has arrived
# (a prediction): `async with open_session(request) as session: ...`
open_session = asynccontextmanager(get_session)


async def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


async def get_producer(request: Request) -> Celery:
    return request.app.state.producer


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
ProducerDep = Annotated[Celery, Depends(get_producer)]
