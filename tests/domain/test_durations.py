from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.domain.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("90", 90), ("250ms", 0.25)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "-5m", "5 minutes", "1w", "m", "1.5.2s"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    "value", ["999999999999999999999999999999", "1" + "0" * 400, 10**30, float("inf"), "36601d"]
)
def test_parse_refuses_overlong(value: str | float) -> None:
    # timedelta itself would raise OverflowError, which callers do not expect.
    with pytest.raises(ValueError, match="too long"):
        parse_duration(value)


def test_parse_accepts_long_retention() -> None:
    assert parse_duration("36600d") == timedelta(days=36600)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value
