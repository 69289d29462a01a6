"""Model downloads: stream to a `.part` file, verify its sha256, then move it into place."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol

import httpx

from tass.client.api_client import TassClient
from tass.client.errors import ChecksumMismatch, TassError, UsageError

FORMATS = ("keras", "savedmodel")
DEFAULT_FILENAMES = {"keras": "{id}.keras", "savedmodel": "{id}-savedmodel.zip"}
CHECKSUM_HEADER = "X-Checksum-Sha256"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


class DownloadProgress(Protocol):
    """Receives progress; the CLI draws a rich progress bar with it."""

    def start(self, path: Path, total: int | None) -> None: ...

    def advance(self, size: int) -> None: ...


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    sha256: str
    verified: bool
    """False only when neither the server's headers nor the model record had a checksum."""


def sha256_from_headers(headers: httpx.Headers) -> str | None:
    """The announced sha256: `X-Checksum-Sha256`, else an ETag that is a bare sha256 hex."""
    value = headers.get(CHECKSUM_HEADER, "").strip().lower()
    if _SHA256.match(value):
        return value
    etag = headers.get("ETag", "").strip()
    etag = etag.removeprefix("W/").strip('"').lower()
    return etag if _SHA256.match(etag) else None


def filename_from_headers(headers: httpx.Headers) -> str | None:
    """The Content-Disposition filename, reduced to a safe base name (never a path)."""
    value = headers.get("Content-Disposition")
    if not value:
        return None
    message = Message()
    message["Content-Disposition"] = value
    name = message.get_filename()
    if not name:
        return None
    name = Path(name.replace("\\", "/")).name
    return None if name in ("", ".", "..") else name


def _target(dest: Path | None, filename: str) -> Path:
    if dest is None:
        return Path(filename)
    if dest.is_dir():
        return dest / filename
    return dest


def download_model(
    client: TassClient,
    model_id: str,
    dest: Path | None = None,
    *,
    fmt: str = "keras",
    overwrite: bool = False,
    progress: DownloadProgress | None = None,
) -> DownloadResult:
    """Download one model file and verify its sha256.

    `dest` is a file, an existing folder, or None for the server's filename in the current
    folder. Redirects (to presigned object-store URLs) are followed; the checksum is taken from
    the API's own first response. On a mismatch the file is deleted and `ChecksumMismatch` is
    raised; an existing file is only replaced with `overwrite`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if dest is not None and dest.exists() and not dest.is_dir() and not overwrite:
        raise UsageError(f"{dest} already exists (use --force to replace it)")
    path = client.download_path(model_id)
    # identity: the bytes hashed must be the stored bytes, not a transfer encoding of them
    headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
    with client.stream(
        "GET", path, params={"format": fmt}, headers=headers, follow_redirects=True
    ) as response:
        first = response.history[0] if response.history else response
        expected = sha256_from_headers(first.headers) or sha256_from_headers(response.headers)
        filename = (
            filename_from_headers(first.headers)
            or filename_from_headers(response.headers)
            or DEFAULT_FILENAMES[fmt].format(id=model_id)
        )
        target = _target(dest, filename)
        if target.exists() and not overwrite:
            raise UsageError(f"{target} already exists (use --force to replace it)")
        if expected is None:
            expected = _checksum_from_record(client, model_id, fmt)
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        part = target.with_name(f"{target.name}.part")
        digest = hashlib.sha256()
        size = 0
        if progress is not None:
            progress.start(target, total)
        try:
            with part.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    if progress is not None:
                        progress.advance(len(chunk))
        except httpx.HTTPError as exc:
            part.unlink(missing_ok=True)
            raise TassError(f"the download of {model_id} was interrupted ({exc})") from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    actual = digest.hexdigest()
    if total is not None and size != total:
        part.unlink(missing_ok=True)
        raise TassError(f"the download of {model_id} ended after {size} of {total} bytes")
    if expected is not None and actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(str(target), expected, actual)
    os.replace(part, target)
    return DownloadResult(target, size, actual, verified=expected is not None)


def _checksum_from_record(client: TassClient, model_id: str, fmt: str) -> str | None:
    """The sha256 the model record lists for `fmt`, for servers that sent no checksum header."""
    for artifact in client.get_model(model_id).get("artifacts") or []:
        value = str(artifact.get("sha256") or "").lower()
        if artifact.get("format") == fmt and _SHA256.match(value):
            return value
    return None
