"""JSON bytes that are kept hold no more memory than their length."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from stacktrail.domain.json_bytes import json_bytes


def _held(encode: Callable[[Any], bytes], values: list[Any]) -> tuple[int, int]:
    """(bytes of memory the encoded values hold, their total length)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode(value) for value in values]
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return held, sum(len(encoded) for encoded in kept)


EVENTS = [{"id": str(i), "name": "x" * 1000} for i in range(100)]


def test_kept_bytes_are_as_long_as_the_json() -> None:
    held, length = _held(json_bytes, EVENTS)
    assert held < length * 1.2


def test_orjson_alone_would_hold_its_whole_buffer() -> None:
    """Why `json_bytes` copies: if orjson stops doing this, the copy can go."""
    held, length = _held(orjson.dumps, EVENTS)
    assert held > length * 3


def test_the_json_is_orjsons() -> None:
    value = {"b": [1, 2.5, None, True], "a": "ü"}
    assert json_bytes(value) == orjson.dumps(value)
    assert json_bytes(value, orjson.OPT_SORT_KEYS) == orjson.dumps(
        value, option=orjson.OPT_SORT_KEYS
    )
