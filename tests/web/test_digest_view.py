"""The digest panel's sentences: when the last digest was delivered and what it covers."""

from __future__ import annotations

from datetime import UTC, datetime

from stacktrail.web.digest_view import DASH, digest_lines, period_words

NOW = datetime(2026, 12, 2, 11, 12, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_each_region_says_when_its_last_digest_was_delivered_or_that_none_was() -> None:
    status = {
        "regions": [
            {
                "region": "RegionOne",
                "last_digest": {
                    "period_start": "2026-12-02T10:00:00Z",
                    "period_end": "2026-12-02T11:00:00Z",
                    "delivered_at": "2026-12-02T11:00:31Z",
                },
            },
            {"region": "RegionTwo", "last_digest": None},
        ]
    }
    assert digest_lines(status, now=NOW) == [
        f"Last digest delivered 11 minutes ago, covering 10:00{DASH}11:00 UTC, RegionOne.",
        "No digest delivered yet for RegionTwo.",
    ]
    assert digest_lines(None, now=NOW) == []
    # a trail that delivers to no container gets no digests
    assert digest_lines(status, delivering=False, now=NOW)[1] == (
        "No digest for RegionTwo: digests are written while events are delivered to a container."
    )


def test_a_period_names_its_day_unless_it_is_today() -> None:
    assert period_words(at(2, 10, 41), at(2, 10, 42), NOW) == f"10:41{DASH}10:42 UTC"
    assert period_words(at(1, 23), at(2, 0), NOW) == f"2026-12-01 23:00{DASH}24:00 UTC"
    assert period_words(at(1, 0), at(2, 0), NOW) == f"2026-12-01 00:00{DASH}24:00 UTC"
    assert period_words(at(1, 12), at(2, 12), NOW) == (
        f"2026-12-01 12:00 {DASH} 2026-12-02 12:00 UTC"
    )
