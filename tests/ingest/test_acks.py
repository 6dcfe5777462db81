from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacktrail.ingest.acks import AckTracker


def test_prefix_grows_only_over_consecutive_tags() -> None:
    tracker = AckTracker()
    tracker.done(2)
    assert tracker.take_prefix() is None  # 1 is still open
    tracker.done(1)
    assert tracker.take_prefix() == 2
    tracker.done(4)
    assert tracker.take_prefix() is None
    assert tracker.take_rest() == [4]


def test_a_tag_cannot_finish_twice() -> None:
    tracker = AckTracker()
    tracker.done(1)
    with pytest.raises(ValueError, match="twice"):
        tracker.done(1)
    tracker.take_prefix()
    with pytest.raises(ValueError, match="twice"):
        tracker.done(1)


@given(st.permutations(list(range(1, 60))), st.integers(min_value=0, max_value=58))
def test_every_finished_tag_is_acked_once_and_open_ones_never(
    order: list[int], open_at: int
) -> None:
    """Whatever the finishing order, acked tags = finished tags; an open tag is never acked."""
    never = order[open_at]
    tracker = AckTracker()
    acked: list[int] = []
    for tag in order:
        if tag == never:
            continue
        tracker.done(tag)
        upto = tracker.take_prefix()
        if upto is not None:
            acked.extend(range(max(acked, default=0) + 1, upto + 1))
    acked.extend(tracker.take_rest())
    assert sorted(acked) == sorted(t for t in order if t != never)
    assert never not in acked
