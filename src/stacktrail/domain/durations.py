"""Human durations (`250ms`, `30s`, `5m`, `1h`, `2d`) as used in settings and the API."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|[smhd]?)\s*$")
# Far beyond any sensible interval or retention, well inside what timedelta holds.
MAX_DURATION = timedelta(days=100 * 366)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse `90`, `30s`, `5m`, `1h`, `2d` (plain numbers are seconds); must be positive."""
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, int | float) and not isinstance(text, bool):
        value = _seconds(float(text), text)
    elif isinstance(text, str):
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(
                f"invalid duration {text!r}: "
                "use a number with a unit ms, s, m, h or d, e.g. 30s, 15m, 1h"
            )
        value = _seconds(float(match.group(1)) * _UNITS[match.group(2) or "s"], text)
    else:
        raise ValueError(f"invalid duration {text!r}")
    if value <= timedelta(0):
        raise ValueError(f"duration must be positive, got {text!r}")
    if value > MAX_DURATION:
        raise ValueError(f"duration {text!r} is too long: at most {MAX_DURATION.days}d")
    return value


def _seconds(seconds: float, text: object) -> timedelta:
    # timedelta overflows (OverflowError, not ValueError) long before float does.
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is too long: at most {MAX_DURATION.days}d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest exact form: 900 s -> `15m`."""
    seconds = value.total_seconds()
    for unit in ("d", "h", "m"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000, 3):g}ms"
