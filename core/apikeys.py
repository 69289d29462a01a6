"""API keys: `tass_<prefix>_<secret>`, shown once; only the SHA-256 of the secret is stored.

The secret is 256 random bits, so a fast digest is the right tool (a slow password hash such as
argon2 guards low-entropy passwords and would add tens of milliseconds to every request);
comparison is constant-time (hmac.compare_digest)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tass.core.db import changed_rows
from tass.core.models import ApiKey, utcnow

KEY_PATTERN = re.compile(r"^tass_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant, and whether the key may see every tenant; `session_id` is
    the dashboard login session the call came through (None for an API key)."""

    key_id: int
    tenant: str
    is_admin: bool
    session_id: int | None = None

    @property
    def scope(self) -> str | None:
        """The tenant to filter by, or None for an admin (sees all)."""
        return None if self.is_admin else self.tenant

    def sees(self, tenant: str) -> bool:
        """Whether this caller may see what belongs to `tenant`."""
        return self.is_admin or tenant == self.tenant


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    session: Session, tenant: str, *, admin: bool = False, name: str | None = None
) -> tuple[ApiKey, str]:
    """Store a new key and return it with its plaintext (the only time it exists)."""
    if not TENANT_PATTERN.match(tenant):
        raise ValueError("tenant must be 1-64 of a-z 0-9 _ . - and start with a letter or digit")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=prefix, secret_hash=_digest(secret), tenant=tenant, is_admin=admin, name=name
    )
    session.add(key)
    session.flush()
    return key, f"tass_{prefix}_{secret}"


# Every request runs this lookup: a Core select of the five columns it needs (no ORM object
# to build and track) costs about 3/4 of loading the ApiKey row.
_KEYS = ApiKey.__table__.c
_KEY_LOOKUP = select(_KEYS.id, _KEYS.tenant, _KEYS.is_admin, _KEYS.secret_hash, _KEYS.revoked_at)


def authenticate(session: Session, presented: str) -> Principal | None:
    """The principal for a presented key, or None if it is malformed, unknown or revoked."""
    match = KEY_PATTERN.match(presented)
    if match is None:
        return None
    prefix, secret = match.groups()
    key = session.execute(_KEY_LOOKUP.where(_KEYS.prefix == prefix)).first()
    candidate = key.secret_hash if key is not None else _digest("")
    if not hmac.compare_digest(candidate, _digest(secret)) or key is None:
        return None
    if key.revoked_at is not None:
        return None
    return Principal(key_id=key.id, tenant=key.tenant, is_admin=key.is_admin)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke by prefix (the part after `tass_`); True if a live key was revoked."""
    revoked = changed_rows(
        session,
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow()),
    )
    return revoked == 1


def revoked_among(session: Session, key_ids: set[int]) -> set[int]:
    """The keys among `key_ids` that are revoked or gone (one query)."""
    if not key_ids:
        return set()
    live = session.scalars(
        select(ApiKey.id).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
    )
    return set(key_ids) - set(live)
