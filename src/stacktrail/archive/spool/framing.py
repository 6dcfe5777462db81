"""Record framing of spool segment (and journal) files.

A segment file is `MAGIC` followed by frames; a frame is

    u32 little-endian payload length | u32 little-endian CRC32 of the payload | payload

The first frame is the segment header (JSON), every further frame one record (the orjson
bytes of a normalised event body, never empty). A reader stops at the first frame that is
incomplete, empty or whose CRC does not match: that is where a crash (or a torn write)
cut the file, and everything before it is whole. Empty frames are refused because a run
of zero bytes (what a file system may show after a power loss) would otherwise read as
valid frames of length 0 with CRC 0.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

MAGIC = b"STSPOOL1"
FRAME = struct.Struct("<II")  # length, CRC32
_FRAME = FRAME
FRAME_OVERHEAD = FRAME.size
MAX_PAYLOAD = 1 << 30


def frame(payload: bytes) -> bytes:
    """One frame around `payload`."""
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"a spool record must have 1 to {MAX_PAYLOAD} bytes, not {len(payload)}")
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def frame_header(length: int, crc: int) -> bytes:
    """The 8 bytes before a payload of `length` bytes whose CRC32 is `crc`."""
    if not 0 < length <= MAX_PAYLOAD:
        raise ValueError(f"a spool frame must have 1 to {MAX_PAYLOAD} bytes, not {length}")
    return _FRAME.pack(length, crc)


def frames(payloads: Iterable[bytes]) -> bytes:
    return b"".join(frame(p) for p in payloads)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a scan found: the whole payloads and where the whole part of the data ends."""

    payloads: list[bytes]
    good_end: int  # offset just after the last whole frame (or the magic)
    clean: bool  # True when the data ended exactly at a frame boundary
    problem: str = ""


def scan(data: bytes | memoryview, magic: bytes = MAGIC) -> ScanResult:
    """Split file data (magic included) into payloads, stopping at the first bad frame."""
    view = memoryview(data)
    spans, good_end, clean, problem = scan_spans(view, magic)
    return ScanResult([bytes(view[a : a + n]) for a, n in spans], good_end, clean, problem)


def scan_spans(
    view: memoryview, magic: bytes = MAGIC
) -> tuple[list[tuple[int, int]], int, bool, str]:
    """(offset, length) of every whole payload, where the whole part ends, whether the data
    ended exactly there, and what stopped the scan otherwise; copies nothing."""
    if len(view) < len(magic) or bytes(view[: len(magic)]) != magic:
        return [], 0, False, "missing or damaged file magic"
    offset = len(magic)
    spans: list[tuple[int, int]] = []
    end = len(view)
    while offset < end:
        if end - offset < FRAME_OVERHEAD:
            return spans, offset, False, f"partial frame header at {offset}"
        length, crc = _FRAME.unpack_from(view, offset)
        start = offset + FRAME_OVERHEAD
        if length == 0:
            return spans, offset, False, f"empty frame at {offset}"
        if length > MAX_PAYLOAD or start + length > end:
            return spans, offset, False, f"partial frame at {offset}"
        if zlib.crc32(view[start : start + length]) != crc:
            return spans, offset, False, f"CRC mismatch at {offset}"
        spans.append((start, length))
        offset = start + length
    return spans, offset, True, ""
