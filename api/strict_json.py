"""Strict JSON request bodies: numbers must be finite and strings valid Unicode without NUL.

Python's `json` accepts `NaN`, `Infinity` and `1e999` (an infinite float) and decodes a lone
surrogate escape such as `"\\ud800"` into a string no database or response can encode; and a
`"\\u0000"` anywhere (a tag, a description) is a string PostgreSQL stores in neither text nor
jsonb. A route class built on FastAPI's documented custom `Request`/`APIRoute` hooks refuses
all three with a 422 naming the field, before the body reaches validation. (Names, ids and
paths refuse every control character: `SingleLine` in `tass.contract.spec`.)"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from tass.api.errors import invalid

Location = list[str | int]


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _string_problem(text: str) -> str | None:
    if _has_lone_surrogate(text):
        return "valid Unicode (a lone surrogate escape was sent)"
    if "\x00" in text:
        return "free of NUL characters (U+0000)"
    return None


def first_unrepresentable(value: Any, loc: Location) -> tuple[Location, str] | None:
    """The location of the first value strict JSON cannot carry, with the reason, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc, "must be a finite number (NaN, Infinity and overflowing numbers are refused)"
    if isinstance(value, str) and (problem := _string_problem(value)):
        return loc, f"must be {problem}"
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := _string_problem(key):
                printable = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\0")
                return [*loc, printable], f"field names must be {problem}"
            found = first_unrepresentable(item, [*loc, key])
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_unrepresentable(item, [*loc, index])
            if found:
                return found
    return None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = json.loads(await self.body())
            found = first_unrepresentable(body, ["body"])
            if found:
                loc, message = found
                field = ".".join(str(part) for part in loc[1:]) or "body"
                raise invalid(loc, f"{field}: {message}")
            self._json = body
        return self._json


class StrictJSONRoute(APIRoute):
    """Use as `APIRouter(route_class=StrictJSONRoute)`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
