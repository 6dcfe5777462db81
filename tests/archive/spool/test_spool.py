"""The spool: group-committed writes, sealing rules, confirmation, recovery, locking."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from stacktrail.archive.spool import Segment, Spool, SpoolLockedError
from stacktrail.archive.spool.framing import FRAME_OVERHEAD, MAGIC, frame
from stacktrail.archive.spool.segment import parse_sealed
from tests.support.segments import segment_spec as spec


def payload(n: int) -> bytes:
    return orjson.dumps({"id": f"event-{n}", "n": n})


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def open_spool(path: Path, clock: Clock | None = None, **kwargs: int) -> Spool:
    spool = Spool(
        path,
        segment_max_bytes=kwargs.get("segment_max_bytes", 1 << 20),
        max_bytes=kwargs.get("max_bytes", 1 << 30),
        clock=clock or Clock(),
    )
    spool.open()
    return spool


def files(path: Path) -> list[str]:
    return sorted(n for n in os.listdir(path) if not n.startswith("."))


def test_one_open_segment_per_project_and_day(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    items = [
        (spec("p1", "2024-05-17"), payload(1)),
        (spec("p2", "2024-05-17"), payload(2)),
        (spec("p1", "2024-05-18"), payload(3)),
        (spec("p1", "2024-05-17"), payload(4)),
    ]
    assert spool.write(items) == []
    segments = spool.segments()
    assert [(s.spec.project_id, s.spec.day, s.records) for s in segments] == [
        ("p1", "2024-05-17", 2),
        ("p2", "2024-05-17", 1),
        ("p1", "2024-05-18", 1),
    ]
    # one batch over three segments: one journal file, no file per segment yet
    assert [name.endswith(".journal") for name in files(tmp_path)] == [True]
    on_disk = sum(os.path.getsize(tmp_path / n) for n in files(tmp_path))
    assert spool.used_bytes == on_disk
    assert spool.pending_bytes("p1") == segments[0].size + segments[2].size
    assert spool.pending_bytes("nobody") == 0

    sealed = spool.seal_all()
    assert len(sealed) == 3
    assert spool.read(sealed[0]) == [payload(1), payload(4)]


def test_ids_are_unique_monotonic_and_named(tmp_path: Path) -> None:
    clock = Clock()
    spool = open_spool(tmp_path, clock)
    spool.write([(spec(f"p{i}"), payload(i)) for i in range(5)])  # same clock value
    ids = [s.id for s in spool.segments()]
    assert ids == sorted(set(ids))
    assert ids[0] == int(clock.now * 1_000_000)
    spool.seal_all()
    for seg in spool.segments():
        parsed = parse_sealed(seg.path.name)
        assert parsed is not None
        assert parsed[0] == seg.id
        assert seg.stamp == "20231114T2213Z"
    spool.close()
    clock.now -= 3600  # the clock went back: ids still grow
    again = open_spool(tmp_path, clock)
    again.write([(spec("p9"), payload(9))])
    assert again.segments()[-1].id > max(ids)


def test_a_full_segment_is_sealed_and_a_new_one_opened(tmp_path: Path) -> None:
    record = payload(0)
    size = len(record) + FRAME_OVERHEAD
    spool = open_spool(tmp_path, segment_max_bytes=200)
    sealed = spool.write([(spec(), record) for _ in range(10)])
    assert sealed
    for seg in spool.segments():
        assert seg.size <= 200 or seg.records == 1
    assert sum(s.records for s in spool.segments()) == 10
    assert all(s.sealed for s in sealed)
    assert len(spool.segments()) == len(sealed) + 1
    assert size < 200


def test_a_changed_trail_seals_the_old_segment(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.write([(spec(), payload(1))])
    sealed = spool.write([(spec(retention_days=7), payload(2))])
    assert len(sealed) == 1
    assert sealed[0].spec.retention_days == 30
    (current,) = [s for s in spool.segments() if not s.sealed]
    assert current.spec.retention_days == 7


def test_segments_past_their_interval_are_sealed(tmp_path: Path) -> None:
    clock = Clock()
    spool = open_spool(tmp_path, clock)
    spool.write([(spec("p1", interval=60.0), payload(1)), (spec("p2"), payload(2))])
    assert spool.seal_due() == []
    clock.now += 61
    (due,) = spool.seal_due()
    assert due.spec.project_id == "p1"
    clock.now += 900
    assert [s.spec.project_id for s in spool.seal_due()] == ["p2"]


def test_a_seal_due_that_fails_leaves_the_segments_due(tmp_path: Path) -> None:
    """seal_due takes due segments off its schedule; a seal that cannot be made durable
    (a full disk) puts them back, so the next call seals them."""
    clock = Clock()
    failing = {"on": False}

    def fault(name: str) -> None:
        if name == "journal-written" and failing["on"]:
            raise OSError(28, "No space left on device")

    spool = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30, clock=clock, fault=fault)
    spool.open()
    spool.write([(spec("p1", interval=60.0), payload(1)), (spec("p2", interval=600.0), payload(2))])
    clock.now += 61
    failing["on"] = True
    with pytest.raises(OSError, match="No space"):
        spool.seal_due()
    failing["on"] = False
    assert [s.spec.project_id for s in spool.seal_due()] == ["p1"]
    assert spool.seal_due() == []
    clock.now += 600
    assert [s.spec.project_id for s in spool.seal_due()] == ["p2"]


def test_seal_due_seals_full_segments_whose_seal_failed_and_named_projects(
    tmp_path: Path,
) -> None:
    writes = {"n": 0, "fail": 0}  # "journal-written" steps so far; the one to fail

    def fault(name: str) -> None:
        if name == "journal-written":
            writes["n"] += 1
            if writes["n"] == writes["fail"]:
                raise OSError(28, "No space left on device")

    spool = Spool(
        tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30, clock=Clock(), fault=fault
    )
    spool.open()
    spool.write([(spec("p1"), payload(1)), (spec("p2"), payload(2)), (spec("p3"), payload(3))])
    # A changed trail fills p1's segment. The batch's records are made durable (one
    # journal frame), then sealing the full segment (the next frame) fails.
    writes["fail"] = writes["n"] + 2
    assert spool.write([(spec("p1", retention_days=7), payload(4))]) == []
    sealed = spool.seal_due(projects={"p3"})
    assert sorted((s.spec.project_id, s.spec.retention_days) for s in sealed) == [
        ("p1", 30),
        ("p3", 30),
    ]
    assert sorted(s.spec.project_id for s in spool.segments() if not s.sealed) == ["p1", "p2"]


def test_the_seal_schedule_stays_small_when_segments_seal_early(tmp_path: Path) -> None:
    """Segments sealed before their interval (full, or all at shutdown) leave their
    schedule entries behind; they are dropped instead of growing with every segment."""
    clock = Clock()
    spool = open_spool(tmp_path, clock)
    for n in range(3000):
        spool.write([(spec(f"p{n}"), payload(n))])
        if n % 100 == 99:
            spool.seal_all()
            spool.seal_due()
    assert len(spool._due) <= 2 * 100 + 1024
    clock.now += 901
    assert spool.seal_due() == []  # every one was sealed already


def test_confirm_every_region_then_delete(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.write([(spec(regions=("R1", "R2")), payload(1))])
    (seg,) = spool.seal_all()
    assert not spool.confirm(seg, "R1")
    assert seg.pending_regions == ("R2",)
    spool.close()

    again = open_spool(tmp_path)
    (seg,) = again.segments()
    assert seg.pending_regions == ("R2",)  # R1's confirmation survived the restart
    assert again.confirm(seg, "R2")
    assert files(tmp_path) == []
    assert again.used_bytes == 0


def test_a_second_process_cannot_open_the_spool(tmp_path: Path) -> None:
    open_spool(tmp_path)
    with pytest.raises(SpoolLockedError):
        open_spool(tmp_path)


def _journal(tmp_path: Path) -> Path:
    (name,) = [n for n in files(tmp_path) if n.endswith(".journal")]
    return tmp_path / name


TAILS = [
    (frame(payload(99))[:5], "partial frame header"),
    (frame(payload(99))[:-3], "partial frame"),
    (b"\x04\x00\x00\x00\xde\xad\xbe\xefjunk", "CRC mismatch"),
    (bytes(8192), "empty frame"),  # zeros a file system may show after power loss
]


@pytest.mark.parametrize(("tail", "problem"), TAILS)
def test_recovery_cuts_a_damaged_journal_tail_and_seals(
    tmp_path: Path, tail: bytes, problem: str
) -> None:
    spool = open_spool(tmp_path)
    spool.write([(spec(), payload(i)) for i in range(2)])
    spool.write([(spec(), payload(2))])
    spool.close()
    path = _journal(tmp_path)
    with path.open("ab") as fh:
        fh.write(tail)

    again = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = again.open()
    assert report.recovered == 1
    ((name, cut, why),) = report.truncated
    assert name == path.name
    assert cut == len(tail)
    assert why.startswith(problem)
    (seg,) = again.sealed_segments()
    whole = len(MAGIC + frame(spec().to_header())) + sum(len(frame(payload(i))) for i in range(3))
    assert seg.size == whole
    assert again.read(seg) == [payload(i) for i in range(3)]
    journals = again.journal_files()  # the cut one, and one noting the seal
    assert all(os.path.getsize(p) == durable for p, durable in journals)  # tail cut off
    assert again.used_bytes == sum(durable for _p, durable in journals)


@pytest.mark.parametrize(("tail", "problem"), TAILS)
def test_recovery_cuts_a_damaged_tail_of_an_open_file_of_the_previous_format(
    tmp_path: Path, tail: bytes, problem: str
) -> None:
    path = tmp_path / "1700000000000000.open"
    whole = MAGIC + frame(spec().to_header()) + b"".join(frame(payload(i)) for i in range(3))
    path.write_bytes(whole + tail)

    again = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = again.open()
    assert report.recovered == 1
    ((name, cut, why),) = report.truncated
    assert name == path.name
    assert cut == len(tail)
    assert why.startswith(problem)
    (seg,) = again.sealed_segments()
    assert seg.size == len(whole)
    assert again.read(seg) == [payload(i) for i in range(3)]


def test_recovery_drops_a_segment_without_records(tmp_path: Path) -> None:
    header_only = MAGIC + frame(spec().to_header())
    (tmp_path / "1700000000000000.open").write_bytes(header_only)
    (tmp_path / "1700000000000001.open").write_bytes(b"")
    (tmp_path / "1700000000000002.open").write_bytes(header_only[:11])  # torn first write
    spool = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = spool.open()
    assert report.removed_empty == 3
    assert files(tmp_path) == []


def test_recovery_sets_an_unreadable_file_aside(tmp_path: Path) -> None:
    (tmp_path / "1700000000000000.open").write_bytes(b"garbage that is no spool segment")
    (tmp_path / "1700000000000001.20240517T0000Z.sealed").write_bytes(MAGIC + frame(b"{}"))
    spool = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = spool.open()
    assert sorted(report.corrupt) == ["1700000000000000.corrupt", "1700000000000001.corrupt"]
    assert spool.segments() == []
    assert spool.used_bytes == 0


def test_sealed_segments_found_at_start_keep_their_stamp(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.write([(spec(), payload(1))])
    (seg,) = spool.seal_all()
    spool.close()
    again = open_spool(tmp_path, Clock(1_800_000_000.0))
    (found,) = again.segments()
    assert isinstance(found, Segment)
    assert (found.id, found.stamp, found.spec) == (seg.id, seg.stamp, seg.spec)
    assert again.pending_bytes("p1") == found.size == seg.size
    # the bound counts what is on disk (here the journal holding the segment)
    assert again.used_bytes == sum(os.path.getsize(tmp_path / n) for n in files(tmp_path))


def test_a_segment_left_undelivered_does_not_keep_the_journals(tmp_path: Path) -> None:
    """B is delivered, A (its destination fails) waits: after `rebuild_after` A moves to
    a file of its own and the journals, with B's delivered bytes, go."""
    clock = Clock()
    spool = Spool(
        tmp_path,
        segment_max_bytes=1 << 20,
        max_bytes=1 << 30,
        journal_max_bytes=4096,
        rebuild_after=60.0,
        clock=clock,
    )
    spool.open()
    for i in range(40):  # several journals, each holding records of both
        spool.write([(spec("A"), payload(i)), (spec("B"), payload(i) + b" " * 200)])
    a, b = spool.seal_all()
    assert spool.confirm(b, "RegionOne")
    journals = spool.journal_files()
    assert len(journals) > 2
    clock.now += 59
    assert spool.rebuild() == []  # a healthy delivery would still come
    clock.now += 2
    assert spool.rebuild() == [a]
    assert not a.in_journal
    assert os.path.getsize(a.path) == a.size
    assert spool.journal_files() == []
    assert spool.used_bytes == a.size == spool.pending_bytes("A")
    assert spool.read(a) == [payload(i) for i in range(40)]
    spool.close()
    again = open_spool(tmp_path)
    (found,) = again.segments()
    assert (found.id, found.stamp) == (a.id, a.stamp)
    assert again.read(found) == [payload(i) for i in range(40)]


def test_a_half_full_spool_rebuilds_at_once(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(
        tmp_path, segment_max_bytes=1 << 20, max_bytes=16 << 10, journal_max_bytes=2048, clock=clock
    )
    spool.open()
    for i in range(30):
        spool.write([(spec("A"), payload(i)), (spec("B"), payload(i) + b" " * 200)])
    a, b = spool.seal_all()
    assert spool.confirm(b, "RegionOne")
    assert spool.used_bytes * 2 >= spool.max_bytes
    assert spool.rebuild() == [a]  # sealed a moment ago, but the spool needs the room
    assert spool.used_bytes == a.size


def test_an_unreadable_journal_is_kept_aside(tmp_path: Path) -> None:
    from stacktrail.archive.spool.journal import JOURNAL_MAGIC

    spool = open_spool(tmp_path)
    spool.write([(spec(), payload(1))])
    spool.close()
    (tmp_path / "1700000000000005.journal").write_bytes(JOURNAL_MAGIC + frame(b"\xff" * 13))
    again = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = again.open()
    assert report.corrupt == ["1700000000000005.journal.corrupt"]
    assert report.recovered == 1
    (seg,) = again.segments()
    assert again.read(seg) == [payload(1)]
    assert again.confirm(seg, "RegionOne")
    assert files(tmp_path) == ["1700000000000005.journal.corrupt"]
    assert again.used_bytes == 0
