"""Server-side dataset paths: they must resolve, after symlinks, inside the configured roots."""

from __future__ import annotations

from pathlib import Path


class DatasetPathError(ValueError):
    """A dataset path the service refuses to read."""


def resolve_dataset_path(raw: str, roots: list[Path]) -> Path:
    """Resolve `raw` (absolute, or relative to the first root) and check it lies in a root."""
    if "://" in raw or raw.startswith("file:"):
        raise DatasetPathError("must be a server-side path, not a URL")
    if "\x00" in raw:
        raise DatasetPathError("contains a NUL byte")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        if not roots:
            raise DatasetPathError("relative paths need TASS_DATA_ROOTS")
        candidate = roots[0] / candidate
    resolved = candidate.resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots)
        raise DatasetPathError(f"must lie inside the data roots ({allowed})")
    if not resolved.exists():
        raise DatasetPathError(f"does not exist: {resolved}")
    return resolved
