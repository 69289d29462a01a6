"""Checkpoints and models in an object store: a local folder (embedded) or S3/MinIO, both
through obstore behind one small interface."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, S3Store

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class ObjectStore:
    """Keys are '/'-separated paths below the configured prefix."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme == "file":
            root = Path(parsed.path)
            root.mkdir(parents=True, exist_ok=True)
            self._store = LocalStore(root)
            self.signs_urls = False
        elif parsed.scheme == "s3":
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            client_options = (
                {"allow_http": True} if endpoint and endpoint.startswith("http:") else None
            )
            self._store = S3Store(
                parsed.netloc,
                prefix=parsed.path.strip("/") or None,
                client_options=client_options,
                **({"endpoint": endpoint} if endpoint else {}),
            )
            self.signs_urls = True
        else:
            raise ValueError(f"artifact URL must be file:// or s3://, got {url!r}")

    def put_file(self, key: str, path: Path) -> StoredObject:
        """Upload a file (atomically) and return its size and sha256."""
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        with open(path, "rb") as handle:
            obstore.put(self._store, key, handle)
        return StoredObject(key=key, size=path.stat().st_size, sha256=digest.hexdigest())

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        obstore.put(self._store, key, data)
        return StoredObject(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    def download(self, key: str, path: Path) -> str:
        """Write an object to `path` and return the sha256 of what was written."""
        digest = hashlib.sha256()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for chunk in obstore.get(self._store, key).stream(min_chunk_size=CHUNK):
                digest.update(chunk)
                handle.write(chunk)
        return digest.hexdigest()

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes [start, end) of an object."""
        options = {"range": (start, end)} if end is not None else {"range": {"offset": start}}
        if start == 0 and end is None:
            options = {}
        result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
        for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    def exists(self, key: str) -> bool:
        try:
            obstore.head(self._store, key)
        except (FileNotFoundError, NotFoundError):
            return False
        return True

    def delete(self, key: str) -> None:
        obstore.delete(self._store, key)

    def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=5)) -> str | None:
        """A short-lived GET URL (S3 only)."""
        if not self.signs_urls:
            return None
        return obstore.sign(self._store, "GET", key, expires)  # type: ignore[arg-type]

    def ping(self) -> None:
        """Raise if the store cannot be listed."""
        next(iter(obstore.list(self._store, chunk_size=1)), None)
