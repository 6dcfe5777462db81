"""Event limits: decode refuses what a sink cannot encode, and whatever it accepts, every
sink encodes (search bulk lines, archive spool records and objects in every format)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacktrail.archive.layout import build_body
from stacktrail.archive.spool.segment import SegmentSpec
from stacktrail.config import Settings
from stacktrail.domain.delivery import Record, Ticket
from stacktrail.domain.event import DecodeError
from stacktrail.domain.event_limits import (
    DEFAULT_LIMITS,
    ENCODER_MAX_DEPTH,
    MAX_DEPTH_CEILING,
    EventLimits,
)
from stacktrail.domain.trail import ArchiveFormat, default_trail
from stacktrail.ingest.decode import decode_message
from stacktrail.search.documents import BulkEncoder
from tests.support.cadf_factory import make_cadf, wrap_v1

PROJECT = "90168d185e504b5580884a235ba31612"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def nested(depth: int, leaf: Any = 0, kind: str = "list") -> Any:
    """A value `depth` containers deep (depth 0: the leaf itself)."""
    value = leaf
    for level in range(depth):
        value = [value] if kind == "list" or (kind == "mixed" and level % 2) else {"a": value}
    return value


def event_with(extra: Any, *, version: int = 1, **fields: Any) -> bytes:
    """A valid notification whose CADF event carries `extra` under `attachments`."""
    cadf = make_cadf(initiator_project=PROJECT, **fields)
    cadf["attachments"] = "@EXTRA@"
    text = orjson.dumps(wrap_v1(cadf)).replace(b'"@EXTRA@"', json_text(extra))
    if version == 1:
        return text
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": text.decode()})


def json_text(value: Any) -> bytes:
    """JSON of a value, also nested beyond orjson's encoder (what other publishers send)."""
    head: list[bytes] = []
    tail: list[bytes] = []
    while True:
        try:
            core = orjson.dumps(value)
            break
        except orjson.JSONEncodeError:
            if isinstance(value, list) and len(value) == 1:
                head.append(b"[")
                tail.append(b"]")
                value = value[0]
            elif isinstance(value, dict) and len(value) == 1:
                ((key, value),) = value.items()
                head.append(b"{" + orjson.dumps(key) + b":")
                tail.append(b"}")
            else:
                raise
    return b"".join(head) + core + b"".join(reversed(tail))


def count_keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(count_keys(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_keys(v) for v in value)
    return 0


def refused(body: bytes, limits: EventLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(DecodeError) as caught:
        decode_message(body, limits=limits, now=NOW)
    return caught.value.reason


# --------------------------------------------------------------------------- depth


def test_default_depth_limit_is_far_below_the_encoders() -> None:
    assert DEFAULT_LIMITS.max_depth == 64
    assert MAX_DEPTH_CEILING + 8 < ENCODER_MAX_DEPTH
    with pytest.raises(orjson.JSONEncodeError):  # what the limit protects against
        orjson.dumps(nested(ENCODER_MAX_DEPTH + 1))
    with pytest.raises(ValueError, match="max_depth"):
        EventLimits(max_depth=MAX_DEPTH_CEILING + 1)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("kind", ["list", "dict", "mixed"])
def test_depth_at_the_limit_is_accepted_one_more_is_refused(version: int, kind: str) -> None:
    # the event is level 1, `attachments` holds the rest
    ok = event_with(nested(DEFAULT_LIMITS.max_depth - 1, kind=kind), version=version)
    assert decode_message(ok, now=NOW).id
    too_deep = event_with(nested(DEFAULT_LIMITS.max_depth, kind=kind), version=version)
    assert refused(too_deep) == "event nested too deeply: more than 64 levels"


@pytest.mark.parametrize("depth", [253, 254, 255, 1000, 1021])
def test_the_wedging_depths_are_refused_with_a_reason(depth: int) -> None:
    assert refused(event_with(nested(depth))) == "event nested too deeply: more than 64 levels"


def test_depth_in_an_unrelated_field_counts_too() -> None:
    cadf = make_cadf(initiator_project=PROJECT)
    cadf["initiator"]["credential"] = nested(100, kind="dict")
    assert refused(orjson.dumps(wrap_v1(cadf))).startswith("event nested too deeply")


# --------------------------------------------------------------------------- strings, keys


def test_string_length_limit() -> None:
    limit = DEFAULT_LIMITS.max_string_chars
    assert decode_message(event_with("x" * limit), now=NOW).id
    assert refused(event_with("x" * (limit + 1))) == (
        f"event has a string longer than {limit} characters"
    )
    # characters, not bytes: escapes and multi-byte text count once per character
    assert decode_message(event_with("é" * limit), now=NOW).id
    assert refused(event_with({"k" * (limit + 1): 1})) == (
        f"event has a key longer than {limit} characters"
    )


def test_key_count_limit() -> None:
    base = orjson.loads(event_with(None))["payload"]
    used = count_keys(base)
    limit = DEFAULT_LIMITS.max_keys
    fits = {f"k{i}": i for i in range(limit - used)}  # `used` counts `attachments` too
    assert decode_message(event_with(fits), now=NOW).id
    fits[f"k{limit}"] = 0
    assert refused(event_with(fits)) == f"event has too many keys: more than {limit}"


def test_key_count_counts_keys_of_every_object() -> None:
    limits = EventLimits(max_keys=100)
    many = [{"a": 1, "b": 2} for _ in range(60)]
    assert refused(event_with(many), limits) == "event has too many keys: more than 100"


def test_size_limit_comes_from_the_limits() -> None:
    body = event_with("x" * 2000)
    assert refused(body, EventLimits(max_bytes=1000)) == (
        f"message too large: {len(body)} bytes > limit of 1000"
    )


def test_limits_come_from_settings(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_DEPTH", "16")
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_STRING_CHARS", "2048")
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_KEYS", "500")
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_BYTES", "65536")
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_FUTURE_SKEW", "1h")
    limits = EventLimits.from_settings(Settings())
    assert limits == EventLimits(
        max_bytes=65536,
        max_depth=16,
        max_string_chars=2048,
        max_keys=500,
        max_future_skew=timedelta(hours=1),
    )
    assert refused(event_with(nested(16)), limits) == "event nested too deeply: more than 16 levels"
    monkeypatch.setenv("STACKTRAIL_EVENT_MAX_DEPTH", "300")
    with pytest.raises(ValueError, match="event_max_depth"):
        Settings()


# --------------------------------------------------------------------------- event time


def test_far_future_event_times_are_refused_with_the_reason() -> None:
    assert refused(event_with(None, event_time="8999-01-01T00:00:00+00:00")) == (
        "eventTime is more than 7d in the future: '8999-01-01T00:00:00+00:00'"
    )
    eight_days = (NOW + timedelta(days=8)).isoformat()
    assert refused(event_with(None, event_time=eight_days)) == (
        f"eventTime is more than 7d in the future: {eight_days!r}"
    )


def test_event_times_within_the_skew_are_accepted() -> None:
    for ahead in (timedelta(0), timedelta(days=6, hours=23), timedelta(days=7)):
        when = NOW + ahead
        assert decode_message(event_with(None, event_time=when), now=NOW).time == when
    assert decode_message(event_with(None, event_time=NOW - timedelta(days=3650)), now=NOW).id


def test_future_skew_is_measured_in_utc_and_configurable() -> None:
    # 2 h ahead in UTC, written with a -05:00 offset (looks 3 h behind)
    when = (NOW + timedelta(hours=2)).astimezone(timezone(-timedelta(hours=5)))
    hour = EventLimits(max_future_skew=timedelta(hours=1))
    assert refused(event_with(None, event_time=when.isoformat()), hour).startswith(
        "eventTime is more than 1h in the future"
    )
    three = EventLimits(max_future_skew=timedelta(hours=3))
    assert decode_message(event_with(None, event_time=when.isoformat()), limits=three, now=NOW).id


def test_future_skew_defaults_to_the_real_clock() -> None:
    tomorrow_week = datetime.now(UTC) + timedelta(days=8)
    with pytest.raises(DecodeError, match="in the future"):
        decode_message(event_with(None, event_time=tomorrow_week))
    assert decode_message(event_with(None, event_time=datetime.now(UTC))).id


# --------------------------------------------------------------------------- property

# Sizes near every limit (and near the encoders' own), as operators may set them.
LIMITS = st.sampled_from(
    [
        DEFAULT_LIMITS,
        EventLimits(max_depth=MAX_DEPTH_CEILING),
        EventLimits(max_depth=8, max_string_chars=1024, max_keys=100),
    ]
)


def _near(*points: int) -> st.SearchStrategy[int]:
    return st.one_of(*(st.integers(max(0, p - 2), p + 2) for p in points))


@st.composite
def shaped_values(draw: st.DrawFn, limits: EventLimits) -> Any:
    kind = draw(st.sampled_from(["depth", "string", "keys", "mixed"]))
    if kind == "depth":
        depth = draw(_near(limits.max_depth, ENCODER_MAX_DEPTH, 1000, 1024))
        leaf = draw(st.sampled_from([0, "x", None, {}, [], {"k": "v"}]))
        return nested(depth, leaf, draw(st.sampled_from(["list", "dict", "mixed"])))
    if kind == "string":
        size = draw(_near(limits.max_string_chars))
        char = draw(st.sampled_from(["x", "é", "\u2603", '"', "\\", "\x00"]))
        return {char * size: 1} if draw(st.booleans()) else char * size
    if kind == "keys":
        count = draw(_near(limits.max_keys - 20, limits.max_keys))
        return {f"k{i}": i for i in range(count)}
    depth = draw(st.integers(0, limits.max_depth + 3))
    width = draw(st.integers(1, 4))
    return nested(depth, [{"s": "y" * draw(_near(limits.max_string_chars))}] * width, "mixed")


def _encode_in_every_sink(record: Record) -> None:
    """What the search sink and the archive sink do with an accepted event."""
    action, doc, end = BulkEncoder("audit-{project_id}-{yyyy.MM}").lines(record).split(b"\n")
    assert end == b""
    assert orjson.loads(action)["create"]["_id"] == record.event.id
    assert orjson.loads(doc)["id"] == record.event.id
    spooled = orjson.dumps(record.event.body)  # ArchiveSink.put
    for fmt in ArchiveFormat:
        spec = SegmentSpec.for_trail(
            PROJECT, record.event.time.date().isoformat(), record.trail, ("RegionOne",)
        )
        assert build_body(replace(spec, format=fmt), [spooled]).records == 1


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data(), version=st.sampled_from([1, 2]))
def test_whatever_decode_accepts_every_sink_encodes(data: st.DataObject, version: int) -> None:
    limits = data.draw(LIMITS)
    extra = data.draw(shaped_values(limits))
    body = event_with(extra, version=version)
    try:
        event = decode_message(body, limits=limits, now=NOW)
    except DecodeError as exc:
        reason = exc.reason
        assert reason.isascii()
        assert len(reason) <= 200
        return
    trail = default_trail(PROJECT, Settings())
    record = Record(PROJECT, event, trail, NOW, Ticket(None, lambda t: None))
    _encode_in_every_sink(record)
