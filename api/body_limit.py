"""Refuse request bodies over the configured size with 413, before anything parses them."""

from __future__ import annotations

import json
import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised while a streamed body is read; FastAPI passes HTTPExceptions through."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, detail=f"request body is larger than {max_bytes} bytes")


PREDICT_PATH = re.compile(r"^/v1/models/[^/]+/predict$")
# dataset uploads stream into the object store; their handler counts the bytes itself against
# TASS_MAX_DATASET_BYTES and the tenant's quota, and names whichever refused the upload
DATASET_UPLOAD_PATH = "/v1/datasets"


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length up front and counts streamed bodies.
    Prediction uploads (images) have their own, larger limit; dataset uploads are counted by
    their handler (api/routers/datasets.py)."""

    def __init__(self, app: ASGIApp, max_bytes: int, predict_max_bytes: int | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.predict_max_bytes = predict_max_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            scope["path"] == DATASET_UPLOAD_PATH and scope["method"] == "POST"
        ):
            await self.app(scope, receive, send)
            return
        limit = self.predict_max_bytes if PREDICT_PATH.match(scope["path"]) else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": f"request body is larger than {limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
