"""A project's backlog over the spools of several workers, and its JSON between them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stacktrail.domain.backlog import SpoolBacklog, combined

EARLY = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_backlogs_add_up_and_the_oldest_and_any_failure_win() -> None:
    healthy = SpoolBacklog(100, 2, EARLY + timedelta(hours=1), 1000, failing=False, held_back=False)
    failing = SpoolBacklog(900, 7, EARLY, 1000, failing=True, held_back=True)
    empty = SpoolBacklog(0, 0, None, 1000, failing=False, held_back=False)
    assert combined([healthy, failing, empty]) == SpoolBacklog(
        1000, 9, EARLY, 3000, failing=True, held_back=True
    )
    assert combined([empty]) == empty


def test_a_backlog_survives_its_json() -> None:
    for backlog in (
        SpoolBacklog(5, 1, EARLY, 10, failing=True, held_back=False),
        SpoolBacklog(0, 0, None, 10, failing=False, held_back=False),
    ):
        assert SpoolBacklog.from_json(backlog.to_json()) == backlog
