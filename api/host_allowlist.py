"""Answer only the service's own host names: a request whose `Host` is not one of them gets
400 (Starlette's `TrustedHostMiddleware`), so a page that rebinds its own DNS name to the
service's address (DNS rebinding) can neither read `/metrics` (open to loopback) nor pass the
dashboard's Origin check, which compares Origin with Host.

The names are the loopback ones (`localhost`, `127.0.0.1`, `[::1]`) and those listed in
`TASS_ALLOWED_HOSTS` (`Settings.resolved_allowed_hosts`). `/healthz` and `/readyz` answer
any Host: they hold no data, and orchestrators probe them by address. A Host that is an IP
address (`10.1.2.3:8000`, `[fd00::1]`) is answered too: a rebinding page always sends its own
DNS name, never an address, and a Kubernetes Prometheus scrapes each pod by its address."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

ANY_HOST_PATHS = frozenset({"/healthz", "/readyz"})


def is_address(host_header: str) -> bool:
    """True when a Host header names an IP address (with or without a port), not a name."""
    host = host_header.strip()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_header(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return value.decode("latin-1")
    return ""


class HostAllowlist:
    """Pure ASGI middleware: TrustedHostMiddleware for everything but the health probes."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.checked = TrustedHostMiddleware(app, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            scope["path"] in ANY_HOST_PATHS or is_address(_host_header(scope))
        ):
            await self.app(scope, receive, send)
            return
        await self.checked(scope, receive, send)
