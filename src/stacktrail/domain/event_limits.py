"""The bounds every accepted event keeps: what decode accepts, every sink can encode.

One home for the limits on message size, nesting depth, string length, key count and
future event time, so the decoder refuses (dead-letters, with the reason) what a sink
would fail on after the message was counted. The sinks serialise events with orjson,
which refuses more than `ENCODER_MAX_DEPTH` levels; the depth limit stays far below it,
so the wrappers sinks and exports put around an event (bulk lines, `{"Records": [...]}`,
export documents) always fit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

from stacktrail.domain.event import DecodeError, JsonDict

ENCODER_MAX_DEPTH: Final = 254  # orjson.dumps: "Recursion limit reached" beyond this
MAX_DEPTH_CEILING: Final = 128  # highest depth limit an operator may set (room for wrappers)

DEFAULT_MAX_BYTES: Final = 4 * 1024 * 1024
DEFAULT_MAX_DEPTH: Final = 64  # CADF events nest 3-6 levels; attachments a few more
DEFAULT_MAX_STRING_CHARS: Final = 64 * 1024
DEFAULT_MAX_KEYS: Final = 10_000
DEFAULT_MAX_FUTURE_SKEW: Final = timedelta(days=7)


class LimitSettings(Protocol):
    """The settings the limits come from (the config satisfies it)."""

    @property
    def event_max_bytes(self) -> int: ...
    @property
    def event_max_depth(self) -> int: ...
    @property
    def event_max_string_chars(self) -> int: ...
    @property
    def event_max_keys(self) -> int: ...
    @property
    def event_max_future_skew(self) -> timedelta: ...


@dataclass(frozen=True, slots=True)
class EventLimits:
    """Bounds of one accepted event (its CADF body; the envelope only counts in bytes)."""

    max_bytes: int = DEFAULT_MAX_BYTES  # whole message body
    max_depth: int = DEFAULT_MAX_DEPTH  # nested objects/lists; the event itself is level 1
    max_string_chars: int = DEFAULT_MAX_STRING_CHARS  # any string value or key
    max_keys: int = DEFAULT_MAX_KEYS  # object members in the whole event
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW  # eventTime ahead of the clock

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= MAX_DEPTH_CEILING:
            raise ValueError(f"max_depth must be within 1..{MAX_DEPTH_CEILING}")
        if min(self.max_bytes, self.max_string_chars, self.max_keys) < 1:
            raise ValueError("event limits must be positive")
        if self.max_future_skew < timedelta(0):
            raise ValueError("max_future_skew must not be negative")

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> EventLimits:
        return cls(
            max_bytes=settings.event_max_bytes,
            max_depth=settings.event_max_depth,
            max_string_chars=settings.event_max_string_chars,
            max_keys=settings.event_max_keys,
            max_future_skew=settings.event_max_future_skew,
        )


DEFAULT_LIMITS: Final = EventLimits()


def may_exceed_shape(body: bytes, limits: EventLimits) -> bool:
    """False when the raw message cannot break a shape limit (the fast path, in C).

    Every nesting level opens with `{` or `[`, every key is followed by `:` and no string
    has more characters than the message has bytes, also inside a v2 envelope's string.
    """
    if not isinstance(body, bytes | bytearray):  # a memoryview has no count() or translate()
        body = bytes(body)
    size = len(body)
    return (
        size > limits.max_string_chars
        # the openings, counted in one pass (two `count`s take half as long again)
        or size - len(body.translate(None, b"{[")) > limits.max_depth
        # a message has no more `:` than bytes: most are too short to count them
        or (size > limits.max_keys and body.count(b":") > limits.max_keys)
    )


def check_shape(event: JsonDict, limits: EventLimits) -> None:
    """Raise DecodeError when the event nests too deeply, or has too long strings or too
    many keys (iterative: the depth of the input never becomes Python recursion)."""
    max_depth = limits.max_depth
    max_chars = limits.max_string_chars
    keys = 0
    stack: list[tuple[Any, int]] = [(event, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            raise DecodeError(f"event nested too deeply: more than {max_depth} levels")
        values: Iterable[Any] = container
        if type(container) is dict:
            keys += len(container)
            if keys > limits.max_keys:
                raise DecodeError(f"event has too many keys: more than {limits.max_keys}")
            for key in container:
                if len(key) > max_chars:
                    raise DecodeError(f"event has a key longer than {max_chars} characters")
            values = container.values()
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append((value, depth + 1))
            elif kind is str and len(value) > max_chars:
                raise DecodeError(f"event has a string longer than {max_chars} characters")
