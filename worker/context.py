"""The worker's database engine (one factory, `worker_engine`, for every engine a worker
process builds) and its per-process resources (engine, store), created lazily in each worker
child after fork."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from celery.signals import worker_process_init

from tass.core.db import Engine, SessionFactory, make_engine, make_session_factory
from tass.core.objectstore import ObjectStore
from tass.core.settings import Settings, get_settings


def worker_engine(settings: Settings) -> Engine:
    """The worker's engine. On PostgreSQL a transaction left open by a paused process (VM
    pause, SIGSTOP, a partition mid-transaction) is ended by the server after half the lease
    timeout, so the row locks it holds never stop the reaper or the next attempt for longer."""
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        return make_engine(url)
    idle_ms = max(1000, int(settings.heartbeat_timeout_seconds * 500))
    options = f"-c idle_in_transaction_session_timeout={idle_ms}"
    return make_engine(url, connect_args={"options": options})


@contextmanager
def worker_sessions(settings: Settings) -> Iterator[SessionFactory]:
    """Sessions on a `worker_engine` of their own, disposed on exit: for the threads and
    signal handlers of the worker's main process (housekeeping, webhook delivery, the
    shutdown hand-back), which never share the job children's engine."""
    engine = worker_engine(settings)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@dataclass
class WorkerContext:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return worker_engine(self.settings)

    @cached_property
    def sessions(self) -> SessionFactory:
        return make_session_factory(self.engine)

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(self.settings.resolved_artifact_url)

    node: str = ""

    @property
    def worker_id(self) -> str:
        """`<celery node name>/<pid>`: the node prefix lets warm shutdown find its jobs."""
        return f"{self.node or socket.gethostname()}/{os.getpid()}"


_context: WorkerContext | None = None


def get_context(node: str | None = None) -> WorkerContext:
    global _context
    if _context is None:
        _context = WorkerContext(get_settings())
    if node:
        _context.node = node
    return _context


@worker_process_init.connect
def _fresh_context_after_fork(**_: object) -> None:
    """Never reuse a pooled connection inherited from the parent."""
    global _context
    if _context is not None and "engine" in _context.__dict__:
        _context.engine.dispose(close=False)
    _context = None
