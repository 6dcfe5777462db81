"""A spool killed (SIGKILL) right after each of its on-disk steps loses no acknowledged
record, never brings back a delivered one, and holds every record once.

The child process writes batches over several projects into a spool with small
segments and small journals (so segments seal, journals rotate and go, and sealed
segments are rebuilt into files of their own all the time), delivers sealed segments
(read, then `confirm`), and prints what it acknowledged and what was confirmed. The
spool's fault hook kills it the n-th time it passes the chosen step. The parent then
opens the spool as a restarted process would and checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest

from stacktrail.archive.spool import Spool
from stacktrail.archive.spool.framing import scan
from stacktrail.archive.spool.journal import JOURNAL_MAGIC
from stacktrail.archive.spool.spool import FAULT_POINTS

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import orjson
    from stacktrail.archive.spool import SegmentSpec, Spool
    from stacktrail.domain.trail import ArchiveFormat, WriteMode

    directory, point, nth, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    hits = {}

    def fault(name):
        hits[name] = hits.get(name, 0) + 1
        if name == point and hits[name] == nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def spec(project):
        return SegmentSpec(project, "2024-05-17", "audit", "", ArchiveFormat.JSON,
                           ("RegionOne",), WriteMode.RESELLER, 30, 3600.0)

    spool = Spool(directory, segment_max_bytes=6000, max_bytes=1 << 40,
                  journal_max_bytes=20000, rebuild_after=0.0, fault=fault)
    spool.open()
    n = 0
    for b in range(batches):
        batch = []
        for _ in range(30):
            body = {"id": f"event-{n:08d}", "n": n, "pad": "x" * (50 + n % 300)}
            batch.append((spec(f"p{n % 7}"), orjson.dumps(body)))
            n += 1
        spool.write(batch)
        print("acked", n - 1, flush=True)
        if b % 4 == 3:
            spool.seal_all()
        if b % 5 == 4:
            spool.rebuild()  # journals only sealed segments hold
        for seg in spool.sealed_segments()[1 : 1 + b % 3]:  # the oldest waits: a rebuild
            numbers = [orjson.loads(r)["n"] for r in spool.read(seg)]
            if spool.confirm(seg, "RegionOne"):
                print("confirmed", *numbers, flush=True)
    print("done", flush=True)
    os._exit(0)  # no close, no seal: like a kill after the last ack
    """
)


def run_child(directory: Path, point: str, nth: int, batches: int = 40) -> tuple[int, set[int]]:
    """Run the writer; (last acknowledged record, records confirmed and deleted)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(directory), point, str(nth), str(batches)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode in (0, -9), out.stderr
    acked = -1
    confirmed: set[int] = set()
    for line in out.stdout.splitlines():
        word, *numbers = line.split()
        if word == "acked":
            acked = int(numbers[0])
        elif word == "confirmed":
            confirmed.update(int(x) for x in numbers)
    if point != "none":
        assert out.returncode == -9, f"the writer never passed {point} {nth} times"
    else:
        assert "done" in out.stdout
    return acked, confirmed


def recovered(directory: Path, fault_at: str = "") -> list[int]:
    """Open the spool as a restarted process would; every record number it holds."""

    def fault(name: str) -> None:
        if name == fault_at:
            raise KeyboardInterrupt  # stands for a kill in the middle of the recovery

    spool = Spool(directory, segment_max_bytes=6000, max_bytes=1 << 40, fault=fault)
    try:
        spool.open()
    except KeyboardInterrupt:
        spool.close()
        spool = Spool(directory, segment_max_bytes=6000, max_bytes=1 << 40)
        spool.open()
    try:
        numbers: list[int] = []
        for path, durable in spool.journal_files():
            assert scan(path.read_bytes(), JOURNAL_MAGIC).clean, f"{path.name} is not cut"
            assert os.path.getsize(path) == durable
        for seg in spool.segments():
            assert seg.sealed, "recovery seals every segment"
            if not seg.in_journal:
                assert scan(seg.path.read_bytes()).clean, f"{seg.path.name} is not cut"
            numbers += [orjson.loads(raw)["n"] for raw in spool.read(seg)]
        leftovers = [n for n in os.listdir(directory) if n.endswith(".tmp")]
        assert not leftovers, f"recovery left {leftovers}"
        on_disk = sum(
            os.path.getsize(directory / n) for n in os.listdir(directory) if n[0].isdigit()
        )
        assert spool.used_bytes == on_disk
        return numbers
    finally:
        spool.close()


def check(acked: int, confirmed: set[int], numbers: list[int]) -> None:
    assert len(numbers) == len(set(numbers)), "a record is held twice"
    held = set(numbers)
    lost = set(range(acked + 1)) - held - confirmed
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    back = held & confirmed
    assert not back, f"{len(back)} delivered records came back, e.g. {sorted(back)[:5]}"


@pytest.mark.slow
@pytest.mark.parametrize("nth", [1, 3, 8])
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_after_each_on_disk_step(tmp_path: Path, point: str, nth: int) -> None:
    acked, confirmed = run_child(tmp_path, point, nth)
    numbers = recovered(tmp_path)
    check(acked, confirmed, numbers)
    assert sorted(recovered(tmp_path)) == sorted(numbers), "a second recovery changed things"
    # deliver what the recovery holds in files of their own, then start again: nothing
    # delivered may come back from a journal that is still there
    spool = Spool(tmp_path, segment_max_bytes=6000, max_bytes=1 << 40)
    spool.open()
    for seg in [s for s in spool.segments() if not s.in_journal]:
        delivered = [orjson.loads(raw)["n"] for raw in spool.read(seg)]
        assert spool.confirm(seg, "RegionOne")
        confirmed.update(delivered)
    spool.close()
    check(acked, confirmed, recovered(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("point", ["journal-created", "journal-synced", "journal-removed"])
def test_a_recovery_cut_short_is_done_again_by_the_next_one(tmp_path: Path, point: str) -> None:
    """The steps of a recovery itself (sealing what was open, removing dead journals)
    may be cut by a kill: the next start does them again."""
    acked, confirmed = run_child(tmp_path, "none", 0, batches=25)
    numbers = recovered(tmp_path, fault_at=point)
    check(acked, confirmed, numbers)


@pytest.mark.parametrize("point", ["journal-written", "rebuild-built", "rebuild-renamed"])
def test_a_failed_seal_or_rebuild_changes_nothing(tmp_path: Path, point: str) -> None:
    """A seal whose S entries, or a rebuild whose files or D entries, cannot be made
    durable (a full disk) leaves the segments where they were; a later try succeeds."""
    failing = {"on": False}

    def fault(name: str) -> None:
        if name == point and failing["on"]:
            raise OSError(28, "No space left on device")

    from tests.archive.spool.test_spool import payload, spec

    spool = Spool(
        tmp_path,
        segment_max_bytes=1 << 20,
        max_bytes=1 << 30,
        journal_max_bytes=100,  # every batch in a journal of its own
        rebuild_after=0.0,
        fault=fault,
    )
    spool.open()
    spool.write([(spec("p1"), payload(1)), (spec("p2"), payload(2))])
    spool.write([(spec("p1"), payload(3))])
    expected = sorted([payload(1), payload(2), payload(3)])
    if point == "journal-written":
        failing["on"] = True
        with pytest.raises(OSError, match="No space"):
            spool.seal_all()
        assert not spool.sealed_segments()
        failing["on"] = False
    spool.seal_all()
    journals = len(spool.journal_files())
    if point != "journal-written":
        failing["on"] = True
        with pytest.raises(OSError, match="No space"):
            spool.rebuild()
        assert all(s.in_journal for s in spool.segments())
        assert len(spool.journal_files()) == journals
    assert not [n for n in os.listdir(tmp_path) if n.endswith((".sealed", ".tmp"))]
    failing["on"] = False
    assert len(spool.rebuild()) == 2
    assert not any(s.in_journal for s in spool.segments())
    assert spool.journal_files() == []  # every journal went, the one noting it too
    assert sorted(r for seg in spool.segments() for r in spool.read(seg)) == expected
    spool.close()
    again = Spool(tmp_path, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    again.open()
    assert sorted(r for seg in again.segments() for r in again.read(seg)) == expected
    again.close()
