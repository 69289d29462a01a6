"""Exception handlers: core's refusals (`DomainError`) answer with the status, message and
Retry-After they carry; infrastructure outages become 503, never 500; a 422 can always be
written, whatever the client sent."""

from __future__ import annotations

import logging
import math
from typing import Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from tass.core.db import DatabaseUnavailable, DBAPIError, PoolTimeout
from tass.core.errors import DomainError

log = logging.getLogger(__name__)

Row = TypeVar("Row")


def invalid(loc: list[str | int], message: str) -> HTTPException:
    """A 422 in FastAPI's own validation shape, naming the offending field."""
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": "value_error"}])


def missing(what: str, key: str) -> HTTPException:
    """A 404 saying there is no `what` called `key` (another tenant's rows are looked up as
    missing, so they are reported the same way)."""
    return HTTPException(404, detail=f"no {what} {key!r}")


def found(row: Row | None, what: str, key: str) -> Row:
    """`row`, or a 404 saying there is no `what` called `key` (`missing`)."""
    if row is None:
        raise missing(what, key)
    return row


def json_safe(value: Any) -> Any:
    """`value` with what strict JSON cannot carry made printable: non-finite floats become
    their names ("nan", "inf") and strings that are not valid UTF-8 (lone surrogates) are
    escaped, so echoing a client's input back in a 422 never fails."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape, written through `json_safe` (its own handler fails on NaN)."""
    if not isinstance(exc, RequestValidationError):  # registered for it only
        raise exc
    return JSONResponse({"detail": json_safe(jsonable_encoder(exc.errors()))}, status_code=422)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """A refusal from core (`DomainError`) as the HTTP answer it carries: its status, its
    message (in the validation shape when it names a field) and `Retry-After` when it has one."""
    if not isinstance(exc, DomainError):  # registered for DomainError only
        raise exc
    headers = None if exc.retry_after is None else {"Retry-After": str(exc.retry_after)}
    if exc.field:
        message = f"{exc.field[-1]}: {exc.detail()}"
        detail: Any = [{"loc": list(exc.field), "msg": message, "type": "value_error"}]
    else:
        detail = exc.detail()
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable; try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, DBAPIError):  # registered for DBAPIError only
        raise exc
    if exc.connection_invalidated or isinstance(exc, DatabaseUnavailable):
        return await database_unavailable(request, exc)
    raise exc


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(DatabaseUnavailable, database_unavailable)
    app.add_exception_handler(PoolTimeout, database_unavailable)
    app.add_exception_handler(DBAPIError, database_error)
