"""A worker host's cache of uploaded archives ($TASS_DATA_DIR/dataset-cache, one file per
sha256), shared by the jobs running on the host; the CACHE_KEEP most recently used are kept.

An entry in use is pinned: a job holds a shared flock on the entry's lock file from before it
looks for the archive until it has read it, and eviction takes that lock exclusively without
waiting and skips entries it cannot take, so an archive another job is opening (more jobs on
the host than CACHE_KEEP) is never removed under it. Eviction also removes the lock file; a
job that pinned a lock file removed meanwhile pins the new one instead (the inode check)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_KEEP = 4  # archives kept in a worker's cache, most recently used first


def _lock_path(archive: Path) -> Path:
    return archive.with_name(f".{archive.name}.lock")


def _still_linked(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (no eviction removed it meanwhile)."""
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


@contextmanager
def pinned(archive: Path) -> Iterator[Path]:
    """Hold `archive` (present or not yet) against eviction for the length of the block."""
    lock = _lock_path(archive)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if _still_linked(fd, lock):
            break
        os.close(fd)
    try:
        yield archive
    finally:
        os.close(fd)  # releases the lock


def _evict_one(archive: Path) -> bool:
    """Remove `archive` unless a job has it pinned; whether it was removed."""
    lock = _lock_path(archive)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _still_linked(fd, lock):
            return False
        archive.unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)


def evict(cache: Path, keep: int = CACHE_KEEP) -> list[Path]:
    """Remove all but the `keep` most recently used archives, skipping pinned ones (and the
    lock files of archives that are gone, say after a failed download, unless pinned)."""
    entries = list(cache.iterdir())
    archives = sorted(
        (p for p in entries if p.is_file() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for lock in entries:
        archive = lock.with_name(lock.name[1 : -len(".lock")])
        if lock.name.startswith(".") and lock.name.endswith(".lock") and not archive.exists():
            _evict_one(archive)
    return [stale for stale in archives[keep:] if _evict_one(stale)]
