"""Model downloads: stream to a `.part` file, verify its sha256, then move it into place."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Protocol

import httpx

from tass.client.api_client import TassClient
from tass.client.errors import TassError, UsageError
from tass.contract.artifacts import (
    MODEL_FORMATS,
    ArtifactError,
    ModelFormat,
    as_sha256,
    download_name,
    save_verified,
)

CHECKSUM_HEADER = "X-Checksum-Sha256"
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
    etag = headers.get("ETag", "").strip().removeprefix("W/").strip('"')
    return as_sha256(headers.get(CHECKSUM_HEADER)) or as_sha256(etag)


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
    fmt: str = ModelFormat.KERAS.value,
    overwrite: bool = False,
    progress: DownloadProgress | None = None,
) -> DownloadResult:
    """Download one model file and verify its sha256.

    `dest` is a file, an existing folder, or None for the server's filename in the current
    folder. Redirects (to presigned object-store URLs) are followed; the checksum is taken from
    the API's own first response. On a mismatch the file is deleted and TassError is
    raised; an existing file is only replaced with `overwrite`.
    """
    if fmt not in MODEL_FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(MODEL_FORMATS)}")
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
            or download_name(model_id, fmt)
        )
        target = _target(dest, filename)
        if target.exists() and not overwrite:
            raise UsageError(f"{target} already exists (use --force to replace it)")
        if expected is None:
            expected = _checksum_from_record(client, model_id, fmt)
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if progress is not None:
            progress.start(target, total)
        chunks = _reported(response.iter_bytes(_CHUNK), progress)
        try:
            saved = save_verified(chunks, target, expected, size=total, what=str(target))
        except httpx.HTTPError as exc:
            raise TassError(f"the download of {model_id} was interrupted ({exc})") from exc
        except ArtifactError as exc:  # truncated or corrupted: nothing was kept
            raise TassError(str(exc)) from exc
    return DownloadResult(saved.path, saved.size, saved.sha256, verified=saved.checked)


def _reported(chunks: Iterable[bytes], progress: DownloadProgress | None) -> Iterator[bytes]:
    for chunk in chunks:
        if progress is not None:
            progress.advance(len(chunk))
        yield chunk


def _checksum_from_record(client: TassClient, model_id: str, fmt: str) -> str | None:
    """The sha256 the model record lists for `fmt`, for servers that sent no checksum header."""
    for artifact in client.get_model(model_id).get("artifacts") or []:
        value = as_sha256(artifact.get("sha256"))
        if artifact.get("format") == fmt and value:
            return value
    return None
