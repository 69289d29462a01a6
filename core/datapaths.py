"""Server-side dataset paths: they must resolve, after symlinks, inside the configured roots.

Error messages never name a server folder or say whether anything exists outside the roots:
the caller hears about the path as they wrote it."""

from __future__ import annotations

import os
from pathlib import Path

MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux and macOS file systems


class DatasetPathError(ValueError):
    """A dataset path the service refuses to read."""


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _checked_components(raw: str) -> None:
    if "://" in raw or raw.startswith("file:"):
        raise DatasetPathError("must be a server-side path, not a URL")
    if "\x00" in raw:
        raise DatasetPathError("contains a NUL byte")
    for part in raw.split("/"):
        if len(os.fsencode(part)) > MAX_COMPONENT_BYTES:
            raise DatasetPathError(
                f"has a component longer than {MAX_COMPONENT_BYTES} bytes: {part[:32]}..."
            )


def _loosely_resolved(candidate: Path) -> Path:
    """The path with the symlinks that exist followed and `..` applied, without failing on
    missing parts (so a root reached through a symlinked alias still counts as inside)."""
    try:
        return candidate.resolve(strict=False)
    except (OSError, RuntimeError):  # a loop (newer Pythons raise): judge the text alone
        return Path(os.path.normpath(candidate))


def resolve_dataset_path(raw: str, roots: list[Path]) -> Path:
    """Resolve `raw` (absolute, or relative to the first root) and check it lies in a root."""
    _checked_components(raw)
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        if not roots:
            raise DatasetPathError("relative paths need TASS_DATA_ROOTS")
        candidate = roots[0] / candidate
    outside = DatasetPathError("must lie inside the server's data roots (TASS_DATA_ROOTS)")
    if not _inside(_loosely_resolved(candidate), roots):
        raise outside  # the same answer whether or not anything exists out there
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise DatasetPathError("does not exist under the data roots") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, over-long paths, permissions
        raise DatasetPathError("cannot be read (a symlink loop or an unreadable path)") from exc
    if not _inside(resolved, roots):
        raise outside
    return resolved
