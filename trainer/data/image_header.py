"""Image format and dimensions from a file's first bytes, before the file is read whole or
decoded: a member that is not an image, or an image of the wrong size, is refused after a few
bytes instead of after decompressing and decoding megabytes."""

from __future__ import annotations

import struct
from typing import Protocol

from tass.trainer.errors import DataError

# JPEG metadata segments (EXIF, ICC profiles) may come before the frame header
MAX_HEADER_SCAN = 256 * 1024
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_NO_LENGTH = {0x01, 0xD8, *range(0xD0, 0xD8)}


class ByteSource(Protocol):
    """What the header readers read from: an open file, an archive member, or the bytes
    already read chained before the rest."""

    def read(self, count: int, /) -> bytes: ...


def _bad(where: str, reason: str) -> DataError:
    return DataError(f"{where}: not a decodable image ({reason})")


class _Reader:
    """Reads from `handle` and keeps what it read, so the caller can read the rest later."""

    def __init__(self, handle: ByteSource, where: str) -> None:
        self.handle, self.where, self.taken = handle, where, bytearray()

    def take(self, count: int) -> bytes:
        if len(self.taken) + count > MAX_HEADER_SCAN:
            raise _bad(self.where, f"no image header in its first {MAX_HEADER_SCAN} bytes")
        chunk = self.handle.read(count)
        self.taken += chunk
        if len(chunk) != count:
            raise _bad(self.where, "truncated image header")
        return chunk


def _jpeg_size(reader: _Reader) -> tuple[int, int]:
    while True:
        byte = reader.take(1)[0]
        if byte != 0xFF:
            raise _bad(reader.where, "corrupt JPEG header")
        marker = reader.take(1)[0]
        while marker == 0xFF:  # fill bytes
            marker = reader.take(1)[0]
        if marker in _JPEG_NO_LENGTH:
            continue
        (length,) = struct.unpack(">H", reader.take(2))
        if length < 2:
            raise _bad(reader.where, "corrupt JPEG header")
        if marker in _JPEG_FRAMES:
            _, height, width = struct.unpack(">BHH", reader.take(5))
            return width, height
        if marker == 0xD9:
            raise _bad(reader.where, "JPEG without a frame header")
        reader.take(length - 2)


def _bmp_size(head: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # BITMAPCOREHEADER: 16-bit dimensions
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def read_image_header(handle: ByteSource, where: str) -> tuple[str, int, int, bytes]:
    """(format, width, height, the bytes consumed) of the PNG, JPEG, GIF or BMP in `handle`;
    DataError if its first bytes are none of these."""
    reader = _Reader(handle, where)
    first = handle.read(26)
    reader.taken += first
    if len(first) < 26 and first[:2] != b"\xff\xd8":
        raise _bad(where, "truncated image header")  # every PNG, GIF and BMP is longer
    if first.startswith(b"\x89PNG\r\n\x1a\n") and first[12:16] == b"IHDR":
        width, height = struct.unpack(">II", first[16:24])
        return "png", width, height, bytes(reader.taken)
    if first[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", first[6:10])
        return "gif", width, height, bytes(reader.taken)
    if first[:2] == b"BM" and len(first) == 26:
        width, height = _bmp_size(first)
        return "bmp", width, height, bytes(reader.taken)
    if first[:2] == b"\xff\xd8":
        reader.taken = bytearray(first[:2])
        rest = _Reader(_Chain(first[2:], handle), where)
        width, height = _jpeg_size(rest)
        return "jpeg", width, height, bytes(reader.taken + rest.taken)
    raise _bad(where, "its first bytes are not those of a PNG, JPEG, GIF or BMP file")


class _Chain:
    """Bytes already read, then the rest of the handle."""

    def __init__(self, head: bytes, handle: ByteSource) -> None:
        self.head, self.handle = head, handle

    def read(self, count: int) -> bytes:
        if self.head:
            chunk, self.head = self.head[:count], self.head[count:]
            if len(chunk) < count:
                chunk += self.handle.read(count - len(chunk))
            return chunk
        return self.handle.read(count)
