"""Record framing: length + CRC32 + payload, and where a damaged file is cut."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.archive.spool.framing import FRAME_OVERHEAD, MAGIC, frame, frames, scan


def test_a_frame_is_length_crc_payload() -> None:
    payload = b'{"id":"x"}'
    assert frame(payload) == struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def test_clean_data_scans_whole() -> None:
    data = MAGIC + frames([b"a", b"b", b"ccc"])
    result = scan(data)
    assert result.payloads == [b"a", b"b", b"ccc"]
    assert result.clean
    assert result.good_end == len(data)


def test_missing_magic() -> None:
    result = scan(b"NOTSPOOL" + frame(b"a"))
    assert result.payloads == []
    assert result.good_end == 0
    assert "magic" in result.problem


def test_partial_header_and_partial_payload_are_cut() -> None:
    whole = MAGIC + frames([b"one", b"two"])
    for extra in (frame(b"three")[:3], frame(b"three")[: FRAME_OVERHEAD + 2]):
        result = scan(whole + extra)
        assert result.payloads == [b"one", b"two"]
        assert not result.clean
        assert result.good_end == len(whole)


def test_crc_mismatch_stops_the_scan() -> None:
    good = MAGIC + frame(b"one")
    bad = bytearray(frame(b"two"))
    bad[-1] ^= 0xFF
    result = scan(good + bytes(bad) + frame(b"three"))
    assert result.payloads == [b"one"]
    assert result.good_end == len(good)
    assert "CRC" in result.problem


def test_zero_filled_tail_is_not_a_run_of_empty_frames() -> None:
    good = MAGIC + frame(b"one")
    result = scan(good + bytes(4096))
    assert result.payloads == [b"one"]
    assert result.good_end == len(good)
    assert "empty frame" in result.problem
    with pytest.raises(ValueError, match="1 to"):
        frame(b"")


def test_absurd_length_is_a_partial_frame() -> None:
    good = MAGIC + frame(b"one")
    result = scan(good + struct.pack("<II", 0xFFFFFFFF, 0) + b"xx")
    assert result.payloads == [b"one"]
    assert result.good_end == len(good)


@given(st.lists(st.binary(min_size=1, max_size=64), max_size=20), st.data())
def test_any_cut_keeps_exactly_the_whole_frames(payloads: list[bytes], data: st.DataObject) -> None:
    blob = MAGIC + frames(payloads)
    cut = data.draw(st.integers(min_value=len(MAGIC), max_value=len(blob)))
    result = scan(blob[:cut])
    ends = [len(MAGIC)]
    for payload in payloads:
        ends.append(ends[-1] + FRAME_OVERHEAD + len(payload))
    whole = max(i for i, end in enumerate(ends) if end <= cut)
    assert result.payloads == payloads[:whole]
    assert result.good_end == ends[whole]
    assert result.clean == (cut == ends[whole])
