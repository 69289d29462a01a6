"""Request dependencies: settings, a DB session that commits or rolls back, store, producer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.db import read_only_sessions, session_scope
from core.objectstore import ObjectStore
from core.settings import Settings

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per handler: committed when the handler returns, rolled back on error,
    and closed before the response is sent (SessionDep has scope="function"), so a slow client
    reading a download or a long response never holds a connection or a database lock.
    GET and HEAD handlers only read: their session never takes SQLite's write lock."""
    factory = request.app.state.session_factory
    if request.method in READ_ONLY_METHODS:
        factory = read_only_sessions(factory)
    with session_scope(factory) as session:
        yield session


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_producer(request: Request) -> Celery:
    return request.app.state.producer


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
ProducerDep = Annotated[Celery, Depends(get_producer)]
