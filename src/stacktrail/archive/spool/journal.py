"""The spool journal: the one append-only file every project's records go to first.

A journal file `<id>.journal` is `JOURNAL_MAGIC` followed by frames (framing.py): one
frame per group commit (a whole batch, whatever the number of projects it touches: one
write, one fdatasync) and one per seal. A frame's payload is a sequence of entries

    u8 kind | u64 LE segment id | u32 LE body length | body

    H  a segment opened; body: its header (the SegmentSpec JSON)
    R  records of the segment; body: their frames, byte for byte as they go into a
       segment file (so a segment is read, or copied to its own file, as ranges)
    S  the segment is sealed; body: the seal stamp (YYYYMMDDTHHMMZ, its objects' names)
    D  the segment is gone from the journal: delivered to every region, or rebuilt into
       a file of its own (empty body)

The frame's CRC covers the whole payload: after a crash a batch is in the journal whole
or not at all. A journal is deleted once every segment with entries in it is gone, and
journals are deleted oldest first, so a D entry always outlives the entries it kills.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from stacktrail.archive.spool.framing import FRAME_OVERHEAD

JOURNAL_MAGIC = b"STJRNL01"
JOURNAL_SUFFIX = ".journal"
HEADER = ord("H")
RECORDS = ord("R")
SEALED = ord("S")
GONE = ord("D")
_KINDS = (HEADER, RECORDS, SEALED, GONE)
_ENTRY = struct.Struct("<BQI")
ENTRY_OVERHEAD = _ENTRY.size
_FRAME_LENGTH = struct.Struct("<I")
_FRAME = struct.Struct("<II")
_JOURNAL_RE = re.compile(r"^(\d{16})\.journal$")


def journal_name(journal_id: int) -> str:
    return f"{journal_id:016d}{JOURNAL_SUFFIX}"


def parse_journal(name: str) -> int | None:
    match = _JOURNAL_RE.match(name)
    return int(match.group(1)) if match else None


def entry_head(kind: int, segment_id: int, length: int) -> bytes:
    return _ENTRY.pack(kind, segment_id, length)


@dataclass(frozen=True, slots=True)
class Entry:
    kind: int
    segment_id: int
    offset: int  # file offset of the body
    length: int


def entries(payload: bytes, base: int) -> list[Entry]:
    """The entries of one whole frame whose payload starts at file offset `base`.

    Raises ValueError when the payload does not split into entries: the CRC matched, so
    that is no torn write but a file this version cannot read.
    """
    found: list[Entry] = []
    offset = 0
    end = len(payload)
    while offset < end:
        if end - offset < ENTRY_OVERHEAD:
            raise ValueError(f"partial journal entry at {base + offset}")
        kind, segment_id, length = _ENTRY.unpack_from(payload, offset)
        start = offset + ENTRY_OVERHEAD
        if kind not in _KINDS or start + length > end:
            raise ValueError(f"unknown or overlong journal entry at {base + offset}")
        found.append(Entry(kind, segment_id, base + start, length))
        offset = start + length
    return found


def count_frames(body: bytes | bytearray | memoryview) -> int:
    """How many record frames an R body holds (their CRCs were covered by the journal's)."""
    count = 0
    offset = 0
    end = len(body)
    while offset + FRAME_OVERHEAD <= end:
        (length,) = _FRAME_LENGTH.unpack_from(body, offset)
        offset += FRAME_OVERHEAD + length
        count += 1
    if offset != end:
        raise ValueError("a journal record entry does not end on a frame")
    return count


def split_frames(body: bytes) -> tuple[list[bytes], str]:
    """The payloads of the record frames of an R body, and what was wrong ("" if nothing)."""
    found: list[bytes] = []
    offset = 0
    end = len(body)
    while offset < end:
        if end - offset < FRAME_OVERHEAD:
            return found, f"partial frame header at {offset}"
        length, crc = _FRAME.unpack_from(body, offset)
        start = offset + FRAME_OVERHEAD
        if length == 0 or start + length > end:
            return found, f"partial frame at {offset}"
        payload = body[start : start + length]
        if zlib.crc32(payload) != crc:
            return found, f"CRC mismatch at {offset}"
        found.append(payload)
        offset = start + length
    return found, ""
