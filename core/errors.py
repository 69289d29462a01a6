"""Domain errors: what a use case in core refuses, each carrying the HTTP answer it stands for,
so one exception handler (tass.api.errors) writes every such refusal the same way.

The problem types: a plain one answers `{"detail": "<message>"}`; one that names a request
field (`field`, e.g. `("query", "cursor")`) answers FastAPI's own validation shape,
`{"detail": [{"loc": [...field], "msg": "<name>: <message>", "type": "value_error"}]}`, as
a 422 does for a value FastAPI itself refuses. `retry_after` (seconds) adds `Retry-After`.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """A refusal with its HTTP status; subclasses (or instances) set `status_code`, `field`
    and `retry_after`."""

    status_code: int = 400
    field: ClassVar[tuple[str, ...] | None] = None
    retry_after: int | None = None

    def detail(self) -> str:
        """The message the client reads (the exception's text unless a subclass says more)."""
        return str(self)
