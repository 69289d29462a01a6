"""Checkpoints and models in an object store: a local folder (embedded) or S3/MinIO, both
through obstore behind one small interface."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import obstore
from obstore.exceptions import AlreadyExistsError, NotFoundError, PreconditionError
from obstore.store import LocalStore, S3Store

from tass.contract.artifacts import ArtifactError, Verified, save_verified

if TYPE_CHECKING:
    from obstore import GetOptions  # these two are defined in obstore's stubs only
    from obstore.store import ClientConfig

CHUNK = 1024 * 1024
# a streamed upload goes up in parts of this size (S3's smallest), at most two in flight, so
# the memory it holds stays near 2 x PART_BYTES whatever the object's size
PART_BYTES = 5 * 1024 * 1024
PARTS_IN_FLIGHT = 2
# the local store writes a streamed upload to `KEY#N` and renames it to KEY once complete; its
# listing skips such names, so one left by a process that died mid-upload is otherwise unseen
STAGING_NAME = re.compile(r"^.+#[0-9]+$")


class ObjectExistsError(RuntimeError):
    """A key already holds an object: stored objects are written once, never replaced."""


@dataclass(frozen=True)
class ObjectInfo:
    """An object in the store: its key and size in bytes."""

    key: str
    size: int


@dataclass(frozen=True)
class StoredObject(ObjectInfo):
    """What a write stored, with the sha256 of the bytes as they were sent."""

    sha256: str


@dataclass(frozen=True)
class ListedObject(ObjectInfo):
    """One object found by a listing (garbage collection), with the store's modification time."""

    last_modified: datetime


class ObjectStore:
    """Keys are '/'-separated paths below the configured prefix."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        self._root: Path | None = None
        if parsed.scheme == "file":
            root = Path(parsed.path)
            root.mkdir(parents=True, exist_ok=True)
            self._store: LocalStore | S3Store = LocalStore(root)
            self._root = root
        elif parsed.scheme == "s3":
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            bucket, prefix = parsed.netloc, parsed.path.strip("/") or None
            if endpoint:  # MinIO or another S3-compatible server
                client_options: ClientConfig = {"allow_http": endpoint.startswith("http:")}
                self._store = S3Store(
                    bucket, prefix=prefix, endpoint=endpoint, client_options=client_options
                )
            else:
                self._store = S3Store(bucket, prefix=prefix)
        else:
            raise ValueError(f"artifact URL must be file:// or s3://, got {url!r}")

    @property
    def signs_urls(self) -> bool:
        """Whether presigned_get can hand out URLs (S3 can; a local folder cannot)."""
        return isinstance(self._store, S3Store)

    def put_file(self, key: str, path: Path) -> StoredObject:
        """Upload a file once and return its size and sha256. The write is atomic (no reader
        ever sees part of it) and conditional: a key that already exists is refused
        (ObjectExistsError), so published bytes can never be replaced."""
        data = path.read_bytes()  # a conditional put is a single request: the whole file
        return self.put_bytes(key, data)

    def put_bytes(self, key: str, data: bytes) -> StoredObject:
        """Store `data` at a new key (write-once, see put_file)."""
        try:
            obstore.put(self._store, key, data, mode="create")
        except (AlreadyExistsError, PreconditionError) as exc:
            message = f"object {key!r} already exists; stored objects are never overwritten"
            raise ObjectExistsError(message) from exc
        return StoredObject(key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest())

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        """Store an async stream of bytes at a fresh key without holding it in memory (a
        multipart upload), with its size and sha256 counted on the way. An exception raised
        by `chunks` aborts the upload and leaves nothing stored. A multipart upload cannot be
        conditional: callers pass keys that are new by construction (a random id)."""
        digest, size = hashlib.sha256(), 0

        async def hashed() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        await obstore.put_async(
            self._store,
            key,
            hashed(),
            chunk_size=PART_BYTES,
            max_concurrency=PARTS_IN_FLIGHT,
        )
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def download(self, key: str, path: Path, sha256: str | None) -> Verified:
        """Write an object to `path` only if its bytes hash to `sha256` (None: unchecked).
        A missing object or a mismatch raises ArtifactError and leaves no file behind."""
        try:
            stream = obstore.get(self._store, key).stream(min_chunk_size=CHUNK)
        except (FileNotFoundError, NotFoundError) as exc:
            raise ArtifactError(f"{key}: no such stored object") from exc
        return save_verified((bytes(chunk) for chunk in stream), path, sha256, what=key)

    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes [start, end) of an object."""
        options: GetOptions = {}
        if end is not None:
            options = {"range": (start, end)}
        elif start:
            options = {"range": {"offset": start}}
        result = obstore.get(self._store, key, options=options)
        for chunk in result.stream(min_chunk_size=CHUNK):
            yield bytes(chunk)

    def exists(self, key: str) -> bool:
        try:
            obstore.head(self._store, key)
        except (FileNotFoundError, NotFoundError):
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove an object; one that is already gone is not an error."""
        with contextlib.suppress(FileNotFoundError, NotFoundError):
            obstore.delete(self._store, key)

    def list(self, prefix: str | None = None) -> Iterator[ListedObject]:
        """Every stored object below `prefix` (the whole store by default)."""
        for batch in obstore.list(self._store, prefix=prefix):
            for meta in batch:
                yield ListedObject(meta["path"], meta["size"], meta["last_modified"])

    def stale_staging(self, written_before: datetime) -> Iterator[ListedObject]:
        """The staging files of unfinished streamed uploads (local store: `KEY#N`) last
        written before `written_before`, keyed by their path below the store's root: an
        upload in progress writes to its file as parts arrive, so one untouched for long
        belongs to a process that died. (S3 keeps an unfinished multipart upload as parts,
        which a bucket lifecycle rule aborts: README "Datasets".)"""
        if self._root is None:
            return
        for folder, _, names in os.walk(self._root):
            for name in names:
                if not STAGING_NAME.match(name):
                    continue
                path = Path(folder) / name
                try:
                    info = path.stat()
                except FileNotFoundError:  # completed or removed meanwhile
                    continue
                written = datetime.fromtimestamp(info.st_mtime, timezone.utc)
                if written < written_before:
                    key = path.relative_to(self._root).as_posix()
                    yield ListedObject(key, info.st_size, written)

    def delete_staging(self, key: str) -> None:
        """Remove a staging file stale_staging found (nothing else: only `KEY#N` names)."""
        if self._root is None or not STAGING_NAME.match(key.rsplit("/", 1)[-1]):
            raise ValueError(f"{key!r} is not a staging file of the local store")
        (self._root / key).unlink(missing_ok=True)

    def presigned_get(self, key: str, expires: timedelta = timedelta(minutes=5)) -> str | None:
        """A short-lived GET URL (S3 only)."""
        if not isinstance(self._store, S3Store):
            return None
        return obstore.sign(self._store, "GET", key, expires)

    def ping(self) -> None:
        """Raise if the store cannot be listed."""
        next(iter(obstore.list(self._store, chunk_size=1)), None)
