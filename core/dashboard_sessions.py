"""Dashboard login sessions: a random token in the cookie, its SHA-256 in the database.

The token is 256 random bits, so (as for API keys) a fast digest is the right hash, and a
lookup by digest leaks nothing usable through timing. A session ends when it expires, when it
is logged out, or when the API key it was opened with is revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tass.core.apikeys import Principal
from tass.core.db import changed_rows
from tass.core.models import ApiKey, DashboardSession, utcnow


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, key_id: int, ttl_seconds: int) -> str:
    """Store a new session for an authenticated key and return its token (shown only once).
    Sessions that expired are deleted on the way."""
    now = utcnow()
    session.execute(delete(DashboardSession).where(DashboardSession.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        DashboardSession(
            token_hash=_digest(token),
            key_id=key_id,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    session.flush()
    return token


def session_principal(session: Session, token: str) -> Principal | None:
    """Who a live session speaks for; None when it is unknown, expired, logged out, or its key
    was revoked."""
    if not token or len(token) > 128:
        return None
    found = session.execute(
        select(ApiKey.id, ApiKey.tenant, ApiKey.is_admin, DashboardSession.id)
        .join(DashboardSession, DashboardSession.key_id == ApiKey.id)
        .where(
            DashboardSession.token_hash == _digest(token),
            DashboardSession.revoked_at.is_(None),
            DashboardSession.expires_at > utcnow(),
            ApiKey.revoked_at.is_(None),
        )
    ).first()
    if found is None:
        return None
    key_id, tenant, is_admin, session_id = found
    return Principal(key_id=key_id, tenant=tenant, is_admin=is_admin, session_id=session_id)


def live_expiries(session: Session, session_ids: set[int]) -> dict[int, datetime]:
    """When each still-live dashboard session among `session_ids` expires; those missing are
    no longer live (logged out, expired or gone). One query; a revoked key is
    `apikeys.revoked_among`'s to find."""
    if not session_ids:
        return {}
    rows = session.execute(
        select(DashboardSession.id, DashboardSession.expires_at).where(
            DashboardSession.id.in_(session_ids),
            DashboardSession.revoked_at.is_(None),
            DashboardSession.expires_at > utcnow(),
        )
    )
    return {session_id: expires_at for session_id, expires_at in rows}


def end_session(session: Session, token: str) -> bool:
    """Revoke a session (logout); True if a live one was ended."""
    ended = changed_rows(
        session,
        update(DashboardSession)
        .where(
            DashboardSession.token_hash == _digest(token),
            DashboardSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow()),
    )
    return ended == 1
