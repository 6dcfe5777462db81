"""Time frames: ISO 8601 and relative forms (pure code)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from stacktrail.domain.timeframe import Timeframe, TimeframeError, epoch_ms, from_epoch_ms, iso

NOW = datetime(2025, 6, 15, 12, 30, 45, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("-7d", NOW - timedelta(days=7)),
        ("-12h", NOW - timedelta(hours=12)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-90s", NOW - timedelta(seconds=90)),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        ("2025-03-01T12:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T12:00:00Z", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        ("2025-03-01T14:00:00+02:00", datetime(2025, 3, 1, 12, tzinfo=UTC)),
        (" 2025-03-01T12:00:00.5z ", datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_forms(text: str, expected: datetime) -> None:
    frame = Timeframe.parse(text, "2030-01-01", NOW)
    assert frame.start == expected
    assert frame.start.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "-7x", "-d", "2025-13-01", "+7d"])
def test_unusable_forms(text: str) -> None:
    with pytest.raises(TimeframeError):
        Timeframe.parse(text, "now", NOW)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00+01:00", "now"),  # before year 1 in UTC: datetime overflows
        ("-7d", "9999-12-31T23:59:59Z"),  # the day after the end overflows
        ("1969-12-31", "now"),
        ("-36600d", "now"),
    ],
)
def test_times_out_of_range_are_refused(start: str, end: str) -> None:
    with pytest.raises(TimeframeError, match="out of range: use a time between 1970 and 9000"):
        Timeframe.parse(start, end, NOW)


def test_inverted_and_empty_frames_are_refused() -> None:
    with pytest.raises(TimeframeError, match="inverted"):
        Timeframe.parse("2025-03-02", "2025-03-01", NOW)
    with pytest.raises(TimeframeError, match="inverted"):
        Timeframe.parse("now", "now", NOW)


def test_days_and_times() -> None:
    frame = Timeframe.parse("2025-02-27T23:00Z", "2025-03-02T00:00Z", NOW)
    assert frame.days() == ["2025-02-27", "2025-02-28", "2025-03-01"]
    assert iso(NOW) == "2025-06-15T12:30:45.123Z"
    assert iso(NOW.astimezone(timezone(timedelta(hours=5)))) == "2025-06-15T12:30:45.123Z"
    assert from_epoch_ms(epoch_ms(NOW)) == NOW.replace(microsecond=123000)
