"""The write-ahead log's records as they lie in a segment file, for tests that damage them."""

from __future__ import annotations

import struct
from pathlib import Path

HEADER = struct.Struct("<IIQB")  # the record header of collector/pipeline/wal.py


def records_at(segment: Path) -> list[tuple[int, int, int]]:
    """(id, offset, size) of each record of a segment whose records are whole."""
    data, offset, found = segment.read_bytes(), 0, []
    while offset < len(data):
        length, _, record_id, _ = HEADER.unpack_from(data, offset)
        found.append((record_id, offset, HEADER.size + length))
        offset += HEADER.size + length
    return found


def flip(segment: Path, offset: int) -> None:
    """Flip every bit of the byte at ``offset`` of ``segment``."""
    data = bytearray(segment.read_bytes())
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))
