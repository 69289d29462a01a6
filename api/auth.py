"""Who may call, as Annotated dependencies that handlers declare: PrincipalDep (every /v1
endpoint: a bearer API key, or a dashboard session cookie with an Origin check, within the
per-key request rate) and DashboardUserDep (every dashboard page: a live login session, else
a redirect to the login form); `admin_key` checks an admin's bearer key for machine endpoints
(/metrics, from outside the networks that need none). All of them share the per-address
throttle on failed authentication."""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tass.api.deps import SessionDep
from tass.core.apikeys import Principal, authenticate
from tass.core.change_feed import ChangeFeed
from tass.core.dashboard_sessions import session_principal
from tass.core.db import Session, SessionFactory, read_only_sessions

bearer = HTTPBearer(auto_error=False, description="An API key: `tass keys create`.")
SESSION_COOKIE = "tass_session"  # the dashboard's HttpOnly, SameSite=Strict session token
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The dashboard's login session (POST /dashboard/login); never an API key.",
)
MAX_TRACKED = 10_000  # addresses or keys a process remembers before it starts over
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DASHBOARD_PREFIX = "/dashboard"  # where the dashboard's pages and login form are mounted

# what current_principal reads, for the OpenAPI document of every /v1 operation (api.docs)
PRINCIPAL_CREDENTIALS = (bearer, session_cookie)
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
    """The caller's address: the connection's, or the one a proxy listed in
    TASS_FORWARDED_ALLOW_IPS forwarded (api/app.py)."""
    return request.client.host if request.client else "unknown"


InFlight = dict[Any, "asyncio.Future[bool]"]  # key -> the one storage call running for it


def call_once(in_flight: InFlight, key: Any, call: Callable[[], bool]) -> asyncio.Future[bool]:
    """The storage call running for `key`, or `call` started now on a worker thread: requests
    that need the same answer wait for one call instead of each taking a thread (under load
    every thread hop queues for the GIL behind the event loop). On the event loop only."""
    running = in_flight.get(key)
    if running is None or running.done():
        running = asyncio.ensure_future(anyio.to_thread.run_sync(call))
        in_flight[key] = running

        def forget(done: asyncio.Future[bool]) -> None:
            if in_flight.get(key) is done:  # unless a newer call took its place
                del in_flight[key]

        running.add_done_callback(forget)
    return running


class AuthFailureThrottle:
    """Failed authentications per client address, a moving window from `limits`: past the
    limit every attempt from that address is 429 (Retry-After) until the window moves on, so
    guessing keys costs time whether the guesses are right or wrong.

    An address found unblocked is trusted for CLEAR_SECONDS without asking the storage again
    (a failure from it in this process ends that at once; a block from another process's
    failures applies here within that time). On the event loop (`check`), a steady client
    never waits for the storage: past half that time one background re-check renews it."""

    NAMESPACE = "auth-failures"
    CLEAR_SECONDS = 1.0

    def __init__(self, rate: str, storage_url: str) -> None:
        from limits import parse, strategies

        from tass.api.rate_counters import FallbackCounters, open_storage

        self.item = parse(rate)
        self.strategy = FallbackCounters(
            strategies.MovingWindowRateLimiter, open_storage(storage_url), "login throttle"
        )
        self._clear_until: dict[str, float] = {}
        self._rechecks: InFlight = {}  # address -> its recheck (on the event loop only)

    def _known_clear(self, address: str) -> bool:
        return self._clear_until.get(address, 0.0) > time.monotonic()

    def _still_clear(self, address: str) -> bool:
        """Ask the storage; remember the address as clear for CLEAR_SECONDS if it is."""
        if not self.strategy.test(self.item, self.NAMESPACE, address):
            self._clear_until.pop(address, None)
            return False
        if len(self._clear_until) >= MAX_TRACKED:
            self._clear_until.clear()
        self._clear_until[address] = time.monotonic() + self.CLEAR_SECONDS
        return True

    def refuse_if_blocked(self, address: str) -> None:
        """429 if the address is blocked. Blocking (the storage): call it on a worker thread."""
        if self._known_clear(address) or self._still_clear(address):
            return
        reset_at, _ = self.strategy.get_window_stats(self.item, self.NAMESPACE, address)
        raise HTTPException(
            429,
            detail="too many failed authentications from this address; try again later",
            headers={"Retry-After": str(max(1, math.ceil(reset_at - time.time())))},
        )

    async def check(self, address: str) -> None:
        """`refuse_if_blocked` for the event loop: no thread and no storage round trip while
        the address is known to be clear (renewed in the background past half its time).
        Otherwise requests from one address wait for one storage check, not one thread each:
        under load every thread hop queues for the GIL behind the event loop."""
        left = self._clear_until.get(address, 0.0) - time.monotonic()
        if left >= self.CLEAR_SECONDS / 2:
            return
        recheck = call_once(self._rechecks, address, lambda: self._recheck(address))
        if left > 0:
            return  # still trusted: the recheck runs in the background
        if not await asyncio.shield(recheck):
            await anyio.to_thread.run_sync(self.refuse_if_blocked, address)  # 429

    def _recheck(self, address: str) -> bool:
        try:
            return self._still_clear(address)
        except BaseException:
            self._clear_until.pop(address, None)  # the next request asks the storage itself
            raise

    def record_failure(self, address: str) -> None:
        self._clear_until.pop(address, None)
        self.strategy.hit(self.item, self.NAMESPACE, address)


async def get_auth_throttle(request: Request) -> AuthFailureThrottle:
    return request.app.state.auth_throttle


AuthThrottleDep = Annotated[AuthFailureThrottle, Depends(get_auth_throttle)]


MISSING_KEY = "missing API key: send 'Authorization: Bearer <key>'"
INVALID_KEY = "invalid or revoked API key"


def _identified(
    request: Request,
    throttle: AuthFailureThrottle,
    look_up: Callable[[Session], Principal | None],
    failure: str,
) -> Principal:
    """Who a credential names (`look_up` in a short read-only session of its own), throttled
    per address: an address with too many recent failures is refused (429) before the
    credential is looked at, and one that names nobody counts as a failure (401 `failure`)."""
    address = client_address(request)
    throttle.refuse_if_blocked(address)
    with read_only_sessions(request.app.state.session_factory)() as session:
        principal = look_up(session)
    if principal is None:
        throttle.record_failure(address)
        raise unauthorized(failure)
    return principal


def _cookie_principal(request: Request, throttle: AuthFailureThrottle, token: str) -> Principal:
    if request.method not in SAFE_METHODS and not is_same_origin(request, allow_missing=False):
        raise HTTPException(403, detail="cross-origin request refused (Origin check)")
    return _identified(
        request,
        throttle,
        lambda session: session_principal(session, token),
        "the dashboard session expired or was ended: log in again",
    )


def _key_principal(request: Request, throttle: AuthFailureThrottle, key: str) -> Principal:
    return _identified(request, throttle, lambda session: authenticate(session, key), INVALID_KEY)


def _look_up_key(factory: SessionFactory, key: str) -> Principal | None:
    with factory() as session:
        return authenticate(session, key)


async def _bearer_principal(request: Request, throttle: AuthFailureThrottle, key: str) -> Principal:
    """The key's principal, as `_key_principal` finds it, without a thread while the address
    is known to be clear and the key is in the process's read cache (unchanged since it was
    looked up). Requests that miss together wait for one lookup of their key."""
    address = client_address(request)
    await throttle.check(address)
    feed: ChangeFeed = request.app.state.change_feed
    factory = read_only_sessions(request.app.state.session_factory)
    cache_key = ("key", hashlib.sha256(key.encode()).digest())
    principal = await feed.read_through(cache_key, lambda: _look_up_key(factory, key))
    if principal is None:
        await anyio.to_thread.run_sync(throttle.record_failure, address)
        raise unauthorized(INVALID_KEY)
    return principal


async def current_principal(request: Request) -> Principal:
    """Every /v1 endpoint: a valid, unrevoked key (bearer header) or a live dashboard session
    (cookie; unsafe methods only from this origin), within the key's request rate. An address
    with too many recent failures is refused before any credential is looked at.

    Every request solves this, so it declares no dependency: it calls FastAPI's security
    classes for its two credentials itself (solved as sub-dependencies they cost 35-40 us of
    a status poll's ~310; `PRINCIPAL_CREDENTIALS` puts them in the OpenAPI document), the
    throttle and the limiter come from app state, and a lookup opens its own short session,
    none at all for a cached key."""
    throttle: AuthFailureThrottle = request.app.state.auth_throttle
    if (credentials := await bearer(request)) is not None:
        principal = await _bearer_principal(request, throttle, credentials.credentials)
    elif cookie_token := await session_cookie(request):
        principal = await run_in_threadpool(_cookie_principal, request, throttle, cookie_token)
    else:
        raise unauthorized(MISSING_KEY)
    limiter: RateLimiter = request.app.state.rate_limiter
    if not await limiter.allow(principal.key_id):
        retry = await run_in_threadpool(limiter.retry_after, principal.key_id)
        raise HTTPException(
            429,
            detail="rate limit exceeded for this API key",
            headers={"Retry-After": str(retry)},
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def admin_key(request: Request, credentials: BearerDep, throttle: AuthThrottleDep) -> Principal:
    """Machine endpoints (/metrics): an admin's bearer key, throttled like every credential
    but outside the per-key request rate; never a dashboard session."""
    if credentials is None:
        raise unauthorized(MISSING_KEY)
    key = credentials.credentials
    principal = _key_principal(request, throttle, key)
    if not principal.is_admin:
        raise HTTPException(403, detail="this needs an admin API key")
    return principal


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
    session.close()  # the connection (and the session slot) back before the page renders
    if principal is None:
        raise LoginRequired(request)
    return principal


DashboardUserDep = Annotated[Principal, Depends(dashboard_user)]


class RateLimiter:
    """A limit per API key, from the `limits` library (Redis or memory; process memory while
    Redis is unreachable, see api.rate_counters): a sliding-window
    counter (this window's and the last window's counts, weighted), so a hit costs O(1) time
    and memory whatever the rate; a moving window keeps every hit and grew with the limit.

    Each process takes a key's hits from the shared window in leases of 1% of the limit and
    counts them down in memory, so only one request in `lease_size` asks the storage (a Redis
    round trip); one renewal at a time per key and process, so a burst of requests takes one
    lease, not one each. A key is never let past its limit. What a lease costs: a lease
    unused after a tenth of the window is dropped, so a key used slower than a tenth of its
    limit is counted as if it used that tenth, and a key can be refused up to one lease per
    other API process early (hits leased there that the key's next requests did not reach).
    Small limits (under 200 per window) lease one hit at a time: exact."""

    NAMESPACE = "api-key"

    def __init__(self, rate: str, storage_url: str) -> None:
        from limits import parse, strategies

        from tass.api.rate_counters import FallbackCounters, open_storage

        self.item = parse(rate)
        self.strategy = FallbackCounters(
            strategies.SlidingWindowCounterRateLimiter, open_storage(storage_url), "rate limit"
        )
        self.lease_size = max(1, self.item.amount // 100)
        self.lease_seconds = self.item.get_expiry() / 10
        self._leases: dict[int, tuple[int, float]] = {}  # key id -> (hits left, valid until)
        self._renewals: InFlight = {}  # key id -> its lease renewal (on the event loop only)
        self._lock = threading.Lock()

    def take_leased(self, key_id: int) -> bool:
        """A hit from this process's lease for the key, without the storage; False when the
        lease is used up or too old."""
        with self._lock:
            left, until = self._leases.get(key_id, (0, 0.0))
            if left <= 0 or until <= time.monotonic():
                return False
            self._leases[key_id] = (left - 1, until)
            return True

    def _renew(self, key_id: int) -> bool:
        """Lease `lease_size` hits from the storage (blocking); False when they do not fit."""
        if self.lease_size == 1 or not self.strategy.hit(
            self.item, self.NAMESPACE, str(key_id), cost=self.lease_size
        ):
            return False
        with self._lock:
            if len(self._leases) >= MAX_TRACKED:
                self._leases.clear()
            self._leases[key_id] = (self.lease_size, time.monotonic() + self.lease_seconds)
        return True

    def _hit_one(self, key_id: int) -> bool:
        return self.strategy.hit(self.item, self.NAMESPACE, str(key_id))

    async def allow(self, key_id: int) -> bool:
        """One hit for the key, on the event loop: from the lease (no thread), else after
        the key's one renewal in flight, which every request that found the lease empty
        waits for (under load a thread hop each would queue for the GIL behind the loop);
        near the limit, where leases no longer fit, each request asks for its own hit."""
        while not self.take_leased(key_id):
            renewal = call_once(self._renewals, key_id, lambda: self._renew(key_id))
            if not await asyncio.shield(renewal):
                return await anyio.to_thread.run_sync(self._hit_one, key_id)
        return True

    def retry_after(self, key_id: int) -> int:
        reset_at, _ = self.strategy.get_window_stats(self.item, self.NAMESPACE, str(key_id))
        return max(1, math.ceil(reset_at - time.time()))
