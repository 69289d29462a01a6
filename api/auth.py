"""Bearer API keys and the per-key request rate limit."""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SessionDep
from core.apikeys import Principal, authenticate

bearer = HTTPBearer(auto_error=False, description="An API key: `tass keys create`.")
SESSION_COOKIE = "tass_session"  # the dashboard's HttpOnly, SameSite=Strict login cookie


def unauthorized(message: str) -> HTTPException:
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Every /v1 endpoint: a valid, unrevoked key (bearer header, or the dashboard's session
    cookie), within its request rate."""
    presented = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not presented:
        raise unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    principal = authenticate(session, presented)
    if principal is None:
        raise unauthorized("invalid or revoked API key")
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


class RateLimiter:
    """A moving-window limit per API key, from the `limits` library (Redis or memory)."""

    def __init__(self, rate: str, storage_url: str) -> None:
        from limits import parse, storage, strategies

        self.item = parse(rate)
        self.strategy = strategies.MovingWindowRateLimiter(storage.storage_from_string(storage_url))

    def hit(self, key_id: int) -> bool:
        return self.strategy.hit(self.item, "api-key", str(key_id))

    def retry_after(self, key_id: int) -> int:
        reset_at, _ = self.strategy.get_window_stats(self.item, "api-key", str(key_id))
        return max(1, math.ceil(reset_at - time.time()))
