"""Exception handlers: infrastructure outages become 503, never 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger(__name__)


def invalid(loc: list[str | int], message: str) -> HTTPException:
    """A 422 in FastAPI's own validation shape, naming the offending field."""
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": "value_error"}])


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or isinstance(exc, OperationalError):
        return await database_unavailable(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OperationalError, database_unavailable)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_exception_handler(DBAPIError, database_error)
