"""Who may call, as Annotated dependencies that handlers declare: PrincipalDep (every /v1
endpoint: a bearer API key, or a dashboard session cookie with an Origin check, within the
per-key request rate), AdminKeyDep (machine endpoints such as /metrics: an admin's bearer key)
and DashboardUserDep (every dashboard page: a live login session, else a redirect to the login
form). All of them share the per-address throttle on failed authentication."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from tass.api.deps import SessionDep, session_reads_only
from tass.core.apikeys import Principal, authenticate
from tass.core.dashboard_sessions import session_principal
from tass.core.db import Session

bearer = HTTPBearer(auto_error=False, description="An API key: `tass keys create`.")
SESSION_COOKIE = "tass_session"  # the dashboard's HttpOnly, SameSite=Strict session token
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The dashboard's login session (POST /dashboard/login); never an API key.",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DASHBOARD_PREFIX = "/dashboard"  # where the dashboard's pages and login form are mounted

BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
SessionCookieDep = Annotated[str | None, Depends(session_cookie)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def is_same_origin(request: Request, *, allow_missing: bool) -> bool:
    """Whether the browser says the request comes from this service's own origin (scheme
    aside: a TLS proxy may hide it). Ports count: another port of the same host is another
    origin, which SameSite cookies do not tell apart."""
    origin = request.headers.get("origin")
    if origin is None:
        return allow_missing
    host = request.headers.get("host", "")
    return origin != "null" and urlsplit(origin).netloc.lower() == host.lower() != ""


def client_address(request: Request) -> str:
    """The caller's address (the proxy's, unless uvicorn is told to trust forwarded headers)."""
    return request.client.host if request.client else "unknown"


class AuthFailureThrottle:
    """Failed authentications per client address, a moving window from `limits`: past the
    limit every attempt from that address is 429 (Retry-After) until the window moves on, so
    guessing keys costs time whether the guesses are right or wrong."""

    NAMESPACE = "auth-failures"

    def __init__(self, rate: str, storage_url: str) -> None:
        from limits import parse, storage, strategies

        self.item = parse(rate)
        self.strategy = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))

    def refuse_if_blocked(self, address: str) -> None:
        if self.strategy.test(self.item, self.NAMESPACE, address):
            return
        reset_at, _ = self.strategy.get_window_stats(self.item, self.NAMESPACE, address)
        raise HTTPException(
            429,
            detail="too many failed authentications from this address; try again later",
            headers={"Retry-After": str(max(1, math.ceil(reset_at - time.time())))},
        )

    def record_failure(self, address: str) -> None:
        self.strategy.hit(self.item, self.NAMESPACE, address)


async def get_auth_throttle(request: Request) -> AuthFailureThrottle:
    return request.app.state.auth_throttle


AuthThrottleDep = Annotated[AuthFailureThrottle, Depends(get_auth_throttle)]


MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"
INVALID_KEY = "invalid or revoked API key"


def _identified(
    request: Request,
    session: Session,
    throttle: AuthFailureThrottle,
    look_up: Callable[[], Principal | None],
    failure: str,
) -> Principal:
    """Who a credential names, throttled per address: an address with too many recent
    failures is refused (429) before the credential is looked at, and one that names nobody
    counts as a failure (401 `failure`)."""
    address = client_address(request)
    throttle.refuse_if_blocked(address)
    principal = look_up()
    if not session_reads_only(request):
        # a session that may write ends the lookup's transaction now: on SQLite it holds the
        # write lock, which must not wait for the handler's thread. A read keeps its snapshot
        # and connection for the handler (no second checkout and BEGIN): get_session caps
        # open sessions below the pool's size, so a held connection starves no thread.
        session.commit()
    if principal is None:
        throttle.record_failure(address)
        raise unauthorized(failure)
    return principal


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: BearerDep,
    cookie_token: SessionCookieDep,
    throttle: AuthThrottleDep,
) -> Principal:
    """Every /v1 endpoint: a valid, unrevoked key (bearer header) or a live dashboard session
    (cookie; unsafe methods only from this origin), within the key's request rate. An address
    with too many recent failures is refused before any credential is looked at."""
    if credentials is not None:
        key = credentials.credentials
        principal = _identified(
            request, session, throttle, lambda: authenticate(session, key), INVALID_KEY
        )
    elif cookie_token:
        if request.method not in SAFE_METHODS and not is_same_origin(request, allow_missing=False):
            raise HTTPException(403, detail="cross-origin request refused (Origin check)")
        principal = _identified(
            request,
            session,
            throttle,
            lambda: session_principal(session, cookie_token),
            "the dashboard session expired or was ended: log in again",
        )
    else:
        raise unauthorized(MISSING_KEY)
    limiter = request.app.state.rate_limiter
    if not limiter.hit(principal.key_id):
        retry = limiter.retry_after(principal.key_id)
        raise HTTPException(
            429,
            detail="rate limit exceeded for this API key",
            headers={"Retry-After": str(retry)},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def admin_key(
    request: Request, session: SessionDep, credentials: BearerDep, throttle: AuthThrottleDep
) -> Principal:
    """Machine endpoints (/metrics): an admin's bearer key, throttled like every credential
    but outside the per-key request rate; never a dashboard session."""
    if credentials is None:
        raise unauthorized(MISSING_KEY)
    key = credentials.credentials
    principal = _identified(
        request, session, throttle, lambda: authenticate(session, key), INVALID_KEY
    )
    if not principal.is_admin:
        raise HTTPException(403, detail="this needs an admin API key")
    return principal


AdminKeyDep = Annotated[Principal, Depends(admin_key)]


def dashboard_url(request: Request, path: str = "") -> str:
    """A dashboard URL below the app's root path: path-only, never built from the Host
    header (no redirect to another site)."""
    return request.scope.get("root_path", "").rstrip("/") + DASHBOARD_PREFIX + path


class LoginRequired(HTTPException):
    """A dashboard page without a live session: a redirect (303) to the login form that
    comes back to the page afterwards."""

    def __init__(self, request: Request) -> None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        url = dashboard_url(request, f"/login?next={quote(target, safe='')}")
        super().__init__(
            303, detail="log in first", headers={"Location": url, "Cache-Control": "no-store"}
        )


def dashboard_user(
    request: Request, session: SessionDep, cookie_token: SessionCookieDep
) -> Principal:
    """Every dashboard page: the key of a live login session (the session cookie), else a
    redirect to the login form."""
    principal = session_principal(session, cookie_token) if cookie_token else None
    session.commit()  # the connection goes back to the pool before the page is rendered
    if principal is None:
        raise LoginRequired(request)
    return principal


DashboardUserDep = Annotated[Principal, Depends(dashboard_user)]


class RateLimiter:
    """A limit per API key, from the `limits` library (Redis or memory): a sliding-window
    counter (this window's and the last window's counts, weighted), so a hit costs O(1) time
    and memory whatever the rate; a moving window keeps every hit and grew with the limit."""

    def __init__(self, rate: str, storage_url: str) -> None:
        from limits import parse, storage, strategies

        self.item = parse(rate)
        self.strategy = strategies.SlidingWindowCounterRateLimiter(
            storage.storage_from_string(storage_url)
        )

    def hit(self, key_id: int) -> bool:
        return self.strategy.hit(self.item, "api-key", str(key_id))

    def retry_after(self, key_id: int) -> int:
        reset_at, _ = self.strategy.get_window_stats(self.item, "api-key", str(key_id))
        return max(1, math.ceil(reset_at - time.time()))
