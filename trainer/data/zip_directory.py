"""A zip's entry count, read before zipfile builds its directory: zipfile parses the whole
central directory into ZipInfo objects (~470 bytes of memory per 53-byte entry) before anyone
can look at how many there are, so a 2 GiB zip of empty entries needs ~19 GB. This reads the
end-of-central-directory record (and its ZIP64 form), then walks the central directory entry by
entry in constant memory, stopping once `limit` is passed: zipfile parses as many entries as
the directory's byte size holds, whatever count the end record claims."""

from __future__ import annotations

import struct
from typing import BinaryIO

END = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
END_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, just before the end record
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # 56 bytes, just before the locator
ZIP64_END_SIGNATURE = b"PK\x06\x06"
ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # a central directory entry's fixed part (46 bytes)
ENTRY_SIGNATURE = b"PK\x01\x02"
MAX_COMMENT = 0xFFFF


def _directory(handle: BinaryIO) -> tuple[int, int, int] | None:
    """(entries the end record claims, directory start, directory size); None when there is
    no end record (zipfile then refuses the file itself)."""
    size = handle.seek(0, 2)
    tail_start = max(size - END.size - MAX_COMMENT, 0)
    handle.seek(tail_start)
    tail = handle.read()
    found = tail.rfind(END_SIGNATURE)
    if found < 0 or len(tail) - found < END.size:
        return None
    end_at = tail_start + found
    _, _, _, _, claimed, dir_size, _, _ = END.unpack_from(tail, found)
    record_at = end_at
    if found >= ZIP64_LOCATOR.size:
        locator = ZIP64_LOCATOR.unpack_from(tail, found - ZIP64_LOCATOR.size)
        zip64_at = end_at - ZIP64_LOCATOR.size - ZIP64_END.size
        if locator[0] == ZIP64_LOCATOR_SIGNATURE and zip64_at >= 0:
            handle.seek(zip64_at)
            raw = handle.read(ZIP64_END.size)
            if len(raw) == ZIP64_END.size and raw[:4] == ZIP64_END_SIGNATURE:
                fields = ZIP64_END.unpack(raw)
                claimed, dir_size, record_at = fields[7], fields[8], zip64_at
    return claimed, max(record_at - dir_size, 0), dir_size


def zip_entry_count(handle: BinaryIO, limit: int) -> int:
    """The entries of the zip open in `handle` (binary, seekable), counted up to `limit + 1`:
    the larger of what the end record claims and what the directory holds. A directory that
    does not parse stops the walk; zipfile then reports the damage itself."""
    directory = _directory(handle)
    if directory is None:
        return 0
    claimed, start, dir_size = directory
    if claimed > limit:
        return claimed
    handle.seek(start)
    count = walked = 0
    while walked + ENTRY.size <= dir_size and count <= limit:
        fixed = handle.read(ENTRY.size)
        if len(fixed) < ENTRY.size or fixed[:4] != ENTRY_SIGNATURE:
            break
        fields = ENTRY.unpack(fixed)
        variable = fields[12] + fields[13] + fields[14]  # name, extra field, comment
        handle.seek(variable, 1)
        walked += ENTRY.size + variable
        count += 1
    return max(count, claimed)
