"""Strict JSON request bodies: numbers must be finite and strings valid Unicode.

Python's `json` accepts `NaN`, `Infinity` and `1e999` (an infinite float) and decodes a lone
surrogate escape such as `"\\ud800"` into a string no database or response can encode. A route
class built on FastAPI's documented custom `Request`/`APIRoute` hooks refuses both with a 422
naming the field, before the body reaches validation."""

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


def first_unrepresentable(value: Any, loc: Location) -> tuple[Location, str] | None:
    """The location of the first value strict JSON cannot carry, with the reason, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc, "must be a finite number (NaN, Infinity and overflowing numbers are refused)"
    if isinstance(value, str) and _has_lone_surrogate(value):
        return loc, "must be valid Unicode (a lone surrogate escape was sent)"
    if isinstance(value, dict):
        for key, item in value.items():
            if _has_lone_surrogate(key):
                return [*loc, key.encode("utf-8", "backslashreplace").decode()], (
                    "field names must be valid Unicode (a lone surrogate escape was sent)"
                )
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
