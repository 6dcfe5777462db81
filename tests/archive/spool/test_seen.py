from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from stacktrail.archive.spool.seen import CURRENT, SeenIds


def test_ids_survive_a_restart_and_a_cut_line(tmp_path: Path) -> None:
    seen = SeenIds(tmp_path, capacity=100)
    seen.open()
    seen.add([("p1", "a"), ("p1", "b"), ("p2", "a")])
    seen.close()
    with (tmp_path / CURRENT).open("ab") as fh:
        fh.write(b'["p3", "cut')  # a write cut by kill -9
    again = SeenIds(tmp_path, capacity=100)
    again.open()
    assert ("p1", "a") in again
    assert ("p2", "a") in again
    assert ("p2", "b") not in again
    assert len(again) == 3
    again.add([("p3", "c")])  # appends after the cut line, still readable
    again.close()
    third = SeenIds(tmp_path, capacity=100)
    third.open()
    assert ("p3", "c") in third


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=2, max_value=40), st.integers(min_value=1, max_value=200))
def test_the_newest_half_capacity_is_always_kept_and_never_more_than_capacity(
    capacity: int, count: int
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        seen = SeenIds(Path(directory), capacity=capacity)
        seen.open()
        for i in range(count):
            seen.add([("p", str(i))])
        assert len(seen) <= capacity
        newest = range(max(count - capacity // 2, 0), count)
        assert all(("p", str(i)) in seen for i in newest)
        seen.close()
        reopened = SeenIds(Path(directory), capacity=capacity)
        reopened.open()
        assert all(("p", str(i)) in reopened for i in newest)


def test_keys_that_share_their_joined_text_stay_apart(tmp_path: Path) -> None:
    """Keys are kept as digests of project and event id: ("ab", "c") is not ("a", "bc")."""
    seen = SeenIds(tmp_path, capacity=100)
    seen.open()
    seen.add([("ab", "c")])
    assert ("ab", "c") in seen
    assert ("a", "bc") not in seen
    assert ("abc", "") not in seen


def test_the_file_holds_the_keys_themselves(tmp_path: Path) -> None:
    """What is written stays readable as (project, event id) lines, as before digests."""
    (tmp_path / CURRENT).write_bytes(b'["p1","e1"]\n["p2","e2"]\n')
    seen = SeenIds(tmp_path, capacity=100)
    seen.open()
    assert ("p1", "e1") in seen
    seen.add([("p3", "e3"), ("p1", "e1")])
    seen.close()
    assert (tmp_path / CURRENT).read_bytes().splitlines() == [
        b'["p1","e1"]',
        b'["p2","e2"]',
        b'["p3","e3"]',
    ]
