"""Opaque keyset cursors for newest-first listings."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone

from tass.core.errors import DomainError

ROW_ID = re.compile(r"[0-9a-zA-Z_-]{1,64}")  # the ids this service makes (uuid4 hex)


class BadCursor(DomainError, ValueError):
    """The cursor was not produced by this service (a 422 naming the `cursor` parameter)."""

    status_code = 422
    field = ("query", "cursor")


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a cursor names; BadCursor for anything this service did not make,
    including timestamps without a UTC offset or outside the representable range."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, row_id = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        at = datetime.fromisoformat(stamp)
        if at.tzinfo is None:
            raise BadCursor("cursor is not valid")
        at = at.astimezone(timezone.utc)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadCursor("cursor is not valid") from exc
    if not ROW_ID.fullmatch(row_id):
        raise BadCursor("cursor is not valid")
    return at, row_id


def encode_queue_cursor(position: int, created_at: datetime, row_id: str) -> str:
    """A cursor into the waiting queue, ordered by (queue position, created_at, id)."""
    return encode_cursor(created_at, f"{position}-{row_id}")


def decode_queue_cursor(cursor: str) -> tuple[int, datetime, str]:
    """The (queue position, created_at, id) a queue cursor names; BadCursor otherwise."""
    at, key = decode_cursor(cursor)
    position, _, row_id = key.partition("-")
    if not position.isdigit() or not row_id:
        raise BadCursor("cursor is not valid")
    return int(position), at, row_id
