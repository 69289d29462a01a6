"""Request dependencies: settings, a DB session that commits or rolls back, store, producer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from core.db import session_scope
from core.objectstore import ObjectStore
from core.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    with session_scope(request.app.state.session_factory) as session:
        yield session


def get_store(request: Request) -> ObjectStore:
    return request.app.state.store


def get_producer(request: Request) -> Celery:
    return request.app.state.producer


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ObjectStore, Depends(get_store)]
ProducerDep = Annotated[Celery, Depends(get_producer)]
