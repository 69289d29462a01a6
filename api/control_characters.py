"""Control characters in a request's path or query are refused before any route runs.

Path ids and query values go into SQL as text, and PostgreSQL stores NUL in neither text nor
jsonb (a `GET /v1/jobs/a%00b` was a 500 there, and SQLite looked it up). No id the service
issues and no query value it reads has a control character, so a path with one names nothing
(404) and a query parameter with one is a 422 naming it. Bodies are checked by the models
(`SingleLine`) and the strict JSON route class (NUL anywhere)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tass.contract.spec import CONTROL_CHARACTERS

MESSAGE = "must not contain control characters (U+0000 to U+001F, U+007F)"


def first_bad_query_parameter(query_string: bytes) -> str | None:
    """The name of the first query parameter whose name or value has a control character."""
    if b"%" not in query_string and not CONTROL_CHARACTERS.search(query_string.decode("latin-1")):
        return None  # the common case: nothing encoded, nothing to decode
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if CONTROL_CHARACTERS.search(name) or CONTROL_CHARACTERS.search(value):
            return CONTROL_CHARACTERS.sub("?", name)
    return None


class ControlCharacterGuard:
    """Pure ASGI middleware: 404 for a path, 422 (FastAPI's shape) for a query parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = self._refusal(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> JSONResponse | None:
        if CONTROL_CHARACTERS.search(scope["path"]):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        name = first_bad_query_parameter(scope.get("query_string", b""))
        if name is None:
            return None
        error = {"loc": ["query", name], "msg": f"{name}: {MESSAGE}", "type": "value_error"}
        return JSONResponse({"detail": [error]}, status_code=422)
