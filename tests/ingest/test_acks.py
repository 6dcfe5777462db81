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


def test_a_round_acks_finished_tags_beyond_an_open_one() -> None:
    """One message in retry does not hold the ones after it: they are acked singly."""
    tracker = AckTracker()
    for tag in (2, 3, 5):
        tracker.done(tag)
    first = tracker.take_round()
    assert (first.upto, first.singles, first.count) == (None, [2, 3, 5], 3)
    assert tracker.take_round().count == 0  # nothing acked twice
    tracker.done(1)
    tracker.done(4)
    # 1 closes the gap; the frame names 4 (the highest unacked tag of the run), never an
    # already acked one such as 5 (RabbitMQ refuses an unknown tag), and counts only 1 and 4.
    second = tracker.take_round()
    assert (second.upto, second.singles, second.count) == (4, [], 2)
    assert tracker.acked_upto == 5
    tracker.done(6)
    assert tracker.take_round().upto == 6


@given(
    st.permutations(list(range(1, 60))),
    st.sets(st.integers(min_value=1, max_value=59), max_size=5),
    st.integers(min_value=1, max_value=7),
)
def test_rounds_ack_each_finished_tag_exactly_once(
    order: list[int], never: set[int], every: int
) -> None:
    """Whatever the order and however often rounds run: every finished tag is settled
    once, an open tag never; a multiple frame never names a tag acked before."""
    tracker = AckTracker()
    acked: set[int] = set()
    settled = 0

    def round_() -> None:
        nonlocal settled
        done = tracker.take_round()
        if done.upto is not None:
            assert done.upto not in acked
            acked.update(t for t in range(1, done.upto + 1) if t not in never)
        for tag in done.singles:
            assert tag not in acked
            acked.add(tag)
        settled += done.count

    for i, tag in enumerate(order):
        if tag not in never:
            tracker.done(tag)
        if i % every == 0:
            round_()
    round_()
    assert acked == set(order) - never
    assert settled == len(acked)


def test_a_prefix_round_leaves_the_tags_beyond_a_gap_waiting() -> None:
    tracker = AckTracker()
    for tag in (1, 2, 4, 5):
        tracker.done(tag)
    first = tracker.take_prefix_round()
    assert (first.upto, first.singles, first.count) == (2, [], 2)
    assert tracker.waiting == 2  # 4 and 5 wait for 3
    tracker.done(3)
    second = tracker.take_prefix_round()
    assert (second.upto, second.count, tracker.waiting) == (5, 3, 0)  # one frame for 3..5
