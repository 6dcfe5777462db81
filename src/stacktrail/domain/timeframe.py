"""Time frames of exports: ISO 8601 times and relative forms (pure code).

Accepted forms of one end of a time frame:

- `now`;
- relative to now: `-7d`, `-12h`, `-30m`, `-90s` (a minus sign and a duration as in the
  settings: `ms`, `s`, `m`, `h`, `d`);
- ISO 8601: `2025-03-01`, `2025-03-01T12:00`, `2025-03-01T12:00:00Z`,
  `2025-03-01T12:00:00+02:00`; a time without an offset is UTC.

A frame is half-open, `[start, end)`, in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from stacktrail.domain.durations import parse_duration


class TimeframeError(ValueError):
    """A time or a frame that cannot be used; the message is meant for the user."""


# Audit events are not older than Unix time; beyond the far end, day arithmetic on a
# frame would overflow datetime.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(text: str, now: datetime) -> datetime:
    """One end of a frame as an aware UTC datetime (see the module doc for the forms),
    between 1970 and 9000."""
    try:
        moment = _parse_time(text, now)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST <= moment <= LATEST:
        raise TimeframeError(
            f"time {text.strip()!r} is out of range: use a time between 1970 and 9000"
        )
    return moment


def _parse_time(text: str, now: datetime) -> datetime:
    value = text.strip()
    if not value:
        raise TimeframeError("empty time: use ISO 8601 (2025-03-01T00:00Z), -7d, -12h or now")
    if value.lower() == "now":
        return now.astimezone(UTC)
    if value.startswith("-"):
        try:
            delta = parse_duration(value[1:])
        except ValueError as exc:
            raise TimeframeError(f"invalid relative time {text!r}: {exc}") from None
        return now.astimezone(UTC) - delta
    iso = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(iso), datetime.min.time())
        except ValueError:
            raise TimeframeError(
                f"invalid time {text!r}: use ISO 8601 (2025-03-01, 2025-03-01T12:00Z), "
                "a relative time (-7d, -12h, -30m) or now"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Timeframe:
    start: datetime  # inclusive, aware UTC
    end: datetime  # exclusive, aware UTC

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise TimeframeError("a time frame needs aware (UTC) times")
        if self.end <= self.start:
            raise TimeframeError(
                f"inverted or empty time frame: from {iso(self.start)} is not before "
                f"to {iso(self.end)}"
            )

    @classmethod
    def parse(cls, start: str, end: str, now: datetime | None = None) -> Timeframe:
        moment = now or datetime.now(UTC)
        return cls(parse_time(start, moment), parse_time(end, moment))

    def days(self) -> list[str]:
        """The UTC days (YYYY-MM-DD) the frame touches."""
        day = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        result = []
        while day <= last:
            result.append(day.isoformat())
            day += timedelta(days=1)
        return result


def iso(moment: datetime) -> str:
    """`2025-03-01T12:00:00.000Z`: millisecond precision, what search dates hold."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(value: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=value)
