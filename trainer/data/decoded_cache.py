"""Decoded pixels kept on disk, so the next job on the same archive skips decoding it.

Decoding CIFAR-10's 50,000 JPEGs from the archive takes 13-25 s of a 2-core machine per job;
reading the same images back as uint8 arrays takes well under a second. An entry is keyed by
what the pixels depend on: the archive file (its resolved path, size and modification time),
the split and the decode size, and the cache's format. A changed archive is a new key; the
stale entry ages out. Entries are `.npz` files (no pickles: `allow_pickle=False`) written
under a temporary name and renamed into place, so a reader never sees half an entry, and at
most `keep` are kept, the most recently used first. A damaged entry is dropped and decoded
again; the cache never fails a load."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from tass.trainer.data.dataset import Dataset

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the decoding changes what pixels an archive gives
KEEP = 4  # entries kept; CIFAR-10's training split is 150 MB at 32x32


class DecodedCache:
    """A folder of decoded datasets, one `.npz` per (archive, split, size)."""

    def __init__(self, folder: Path, keep: int = KEEP) -> None:
        self.folder = folder
        self.keep = keep

    def key(self, archive: Path, split: str, size: int) -> str:
        stat = archive.stat()
        identity = [str(archive.resolve()), stat.st_size, stat.st_mtime_ns, split, size, FORMAT]
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> Dataset | None:
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                data = Dataset(
                    stored["x"],
                    stored["y"],
                    list(json.loads(str(stored["class_names"]))),
                    dict(json.loads(str(stored["source_sizes"]))),
                )
        except FileNotFoundError:
            return None
        except Exception as exc:  # damaged or from an incompatible writer: decode again
            log.warning("decoded-pixel cache entry %s unusable (%s); decoding again", path, exc)
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # most recently used
        return data

    def put(self, key: str, data: Dataset) -> None:
        """Store `data` (best effort: a full disk costs the next job a decode, not this one)."""
        temporary: str | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out,
                    x=data.x,
                    y=data.y,
                    class_names=np.asarray(json.dumps(data.class_names)),
                    source_sizes=np.asarray(json.dumps(data.source_sizes)),
                )
            os.replace(temporary, self._path(key))
        except OSError as exc:
            log.warning("could not keep decoded pixels in %s: %s", self.folder, exc)
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            return
        self._evict()

    def _evict(self) -> None:
        entries = sorted(
            self.folder.glob("*.npz"), key=lambda p: p.stat().st_mtime_ns, reverse=True
        )
        for stale in entries[self.keep :]:
            stale.unlink(missing_ok=True)
