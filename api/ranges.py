"""Parsing a single HTTP byte range (RFC 9110 section 14)."""

from __future__ import annotations


class RangeNotSatisfiable(ValueError):
    """The range lies outside the representation."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """Return (start, end_exclusive) for a single `bytes=` range, or None to send everything
    (absent, multi-range or malformed headers are ignored, as the RFC allows)."""
    if not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        suffix = int(last) if first == "" else None
        start = int(first) if first else 0
        end = int(last) + 1 if last and first else size
    except ValueError:  # RangeNotSatisfiable is a ValueError too: raised only after this
        return None
    if suffix is not None:
        if suffix <= 0:  # `bytes=-0`: the last zero bytes, an empty (unsatisfiable) range
            raise RangeNotSatisfiable(header)
        return max(size - suffix, 0), size
    if start >= size or start < 0 or end <= start:
        raise RangeNotSatisfiable(header)
    return start, min(end, size)
