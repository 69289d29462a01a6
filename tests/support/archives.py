"""Small image-folder archives (.tar.gz, .zip) written without TensorFlow or Pillow: 32x32 PNGs
encoded by hand (zlib and CRCs), for the upload tests of the API and the service."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

CLASSES = ("cat", "dog")


def png_bytes(red: int, green: int, blue: int, size: int = 32) -> bytes:
    """A valid RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((red, green, blue)) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def class_files(per_class: int = 6) -> dict[str, bytes]:
    """train/<class>/NNNN.png for two classes whose colour tells them apart."""
    files = {}
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            colour = (200, 20 + i, 30) if label == 0 else (20, 30 + i, 200)
            files[f"train/{name}/{i:04d}.png"] = png_bytes(*colour)
    return files


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
