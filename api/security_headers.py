"""Headers every response carries: `X-Content-Type-Options: nosniff` everywhere (static files
too), and a cache policy on everything but the dashboard's static files.

API responses hold one tenant's data, so no shared cache may keep them and no browser may
show a stale copy. Without a validator that means `Cache-Control: no-store`. A response with an
`ETag` (job status, model downloads) gets `private, no-cache` instead: `no-store` would forbid
the client from keeping the body, so it could never send `If-None-Match` and the 304 the ETag
exists for would never happen; `no-cache` lets it keep the copy but revalidate on every use
(never stale) and `private` keeps proxies from storing it. A handler that sets its own
Cache-Control keeps it."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# the dashboard's versioned URLs and the API docs' assets; StaticFiles sends ETag/Last-Modified
STATIC_PREFIXES = ("/dashboard/static/", "/docs/static/")
NO_STORE = b"no-store"
REVALIDATE = b"private, no-cache"


class SecurityHeaders:
    """Pure ASGI middleware adding the headers at `http.response.start`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable_static = scope["path"].startswith(STATIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if not cacheable_static and b"cache-control" not in names:
                    policy = REVALIDATE if b"etag" in names else NO_STORE
                    headers.append((b"cache-control", policy))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
