"""Server-side paths: dataset paths must resolve, after symlinks, inside the configured
roots; the embedded data dir is private to the user running the service.

Error messages never name a server folder or say whether anything exists outside the roots:
the caller hears about the path as they wrote it."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

MAX_COMPONENT_BYTES = 255  # NAME_MAX on Linux and macOS file systems
GROUP_AND_OTHERS = 0o077  # the permission bits a private folder's entries never keep


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


def stored_dataset_path(resolved: Path, roots: list[Path]) -> str:
    """A checked path as a job records and shows it: relative to the first root when it lies
    there (as `resolve_dataset_path` reads relative paths), so the job's dataset, its page and
    a re-run never show the server's folders; a path in another root stays absolute (the
    caller had to write it so)."""
    if roots and (resolved == roots[0] or resolved.is_relative_to(roots[0])):
        return str(resolved.relative_to(roots[0]))
    return str(resolved)


def make_private(folder: Path) -> None:
    """Create `folder` for this user alone (0700), or tighten it if it exists: the embedded
    data dir holds the database (webhook secrets, key and session hashes, every tenant's rows)
    and every artifact. Its top-level files (the SQLite databases) lose their group and other
    permissions on every start; the whole tree is walked only when the folder itself was open
    (a data dir from before this rule, or one made by hand), since a private folder holds only
    what the service's processes made (umask 077) or is closed to others anyway. Symlinks are
    never followed; an entry this user does not own is logged and left alone."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    was_open = stat.S_IMODE(folder.stat().st_mode) & GROUP_AND_OTHERS
    _tighten(folder)
    for path in _tree(folder) if was_open else folder.iterdir():
        _tighten(path)


def _tree(folder: Path) -> Iterator[Path]:
    for parent, folders, files in os.walk(folder, followlinks=False):
        for name in [*folders, *files]:
            yield Path(parent) / name


def _tighten(path: Path) -> None:
    try:
        status = path.lstat()
        mode = stat.S_IMODE(status.st_mode)
        if stat.S_ISLNK(status.st_mode) or not mode & GROUP_AND_OTHERS:
            return
        path.chmod(mode & ~GROUP_AND_OTHERS)
    except FileNotFoundError:
        return  # removed meanwhile (a SQLite journal)
    except PermissionError as exc:
        log.warning("cannot make %s private to this user: %s", path, exc)
