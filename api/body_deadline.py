"""Refuse request bodies that arrive too slowly with 408, so a client that trickles a body
holds no connection, buffer or handler for long (the header timeout in api/http_protocol.py
bounds the headers; this bounds the body).

The body has `TASS_BODY_TIMEOUT_SECONDS` to start and, after that, must keep arriving at an
average of at least `TASS_BODY_MIN_BYTES_PER_SECOND`: the next chunk is due by
`start + timeout + bytes so far / minimum rate`, where `start` is when the handler first asks
for the body. A 32 MiB prediction at the default rate (16 KiB/s) may take up to ~35 minutes;
a client sending nothing is refused after the timeout."""

from __future__ import annotations

import time

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooSlow(HTTPException):
    """Raised while a body is read; FastAPI passes HTTPExceptions through."""

    def __init__(self, timeout_seconds: float, min_rate: int) -> None:
        super().__init__(
            408,
            detail=f"the request body arrived too slowly: it must start within "
            f"{timeout_seconds:g} s and then average at least {min_rate} bytes/s",
            headers={"Connection": "close"},
        )


class BodyDeadline:
    """Pure ASGI middleware timing each `http.request` message the app waits for."""

    def __init__(self, app: ASGIApp, timeout_seconds: float, min_bytes_per_second: int) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds
        self.min_rate = min_bytes_per_second

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started: float | None = None
        seen = 0
        complete = False

        async def timed_receive() -> Message:
            nonlocal started, seen, complete
            if complete:  # after the body: only a disconnect is left to wait for
                return await receive()
            now = time.monotonic()
            if started is None:
                started = now
            due = started + self.timeout_seconds + seen / self.min_rate
            with anyio.move_on_after(max(due - now, 0)):
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    complete = not message.get("more_body", False)
                return message
            raise BodyTooSlow(self.timeout_seconds, self.min_rate)

        await self.app(scope, timed_receive, send)
