"""The uploader after an outage: thousands of sealed segments wait, and it looks for
work after every finished job. Its scan ends once every region's upload slots are taken,
so a finished job costs a few segments' look, not one per waiting segment; projects whose
deliveries fail cost a look each, not a walk over their backlog; a flush (or shutdown)
starts jobs as slots free up, not one task per waiting segment; nothing is left behind;
and a cancel always ends the uploader's loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stacktrail.archive.spool import Segment, Spool
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.uploader import Uploader
from stacktrail.domain.errors import PermanentError
from stacktrail.domain.ledger import MemoryLedger
from tests.archive.spool.test_spool import payload, spec
from tests.support.polling import eventually

WAITING = 400
CONCURRENCY = 3


class GatedStore(LocalDirStore):
    """The real file store, whose puts wait for `gate` (uploads in flight)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        await self.gate.wait()
        return await super().put(bucket, key, body, headers)


class CountingSpool(Spool):
    """Counts the waiting segments each scan looks at."""

    looked = 0

    def lacking(self, region: str, project_id: str) -> list[Segment]:
        spool = self

        class Counted(list[Segment]):
            def __iter__(self) -> Iterator[Segment]:
                for seg in super().__iter__():
                    spool.looked += 1
                    yield seg

        return Counted(super().lacking(region, project_id))


def waiting_spool(directory: Path) -> CountingSpool:
    """WAITING sealed segments, each for regions R1 and R2."""
    directory.mkdir()
    spool = CountingSpool(directory, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    spool.open()
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    for n in range(WAITING):
        spool.write([(spec(f"p{n % 7}", day=days[n // 7], regions=("R1", "R2")), payload(n))])
    spool.seal_all()
    return spool


def waiting_uploader(tmp_path: Path) -> tuple[CountingSpool, GatedStore, MemoryLedger, Uploader]:
    """An uploader of WAITING sealed segments into the gated file store."""
    spool = waiting_spool(tmp_path / "spool")
    store = GatedStore(tmp_path / "archive")
    ledger = MemoryLedger()
    uploader = Uploader(
        spool,
        store,
        ledger,
        worker="w1",
        concurrency=CONCURRENCY,
        retry_max=5.0,
        delete_at=lambda _spec: int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()),
    )
    return spool, store, ledger, uploader


async def test_a_scan_stops_once_every_slot_is_taken(tmp_path: Path) -> None:
    spool, store, ledger, uploader = waiting_uploader(tmp_path)
    running = asyncio.create_task(uploader.run())
    try:
        await eventually(lambda: len(uploader._inflight) == 2 * CONCURRENCY, within=10)
        spool.looked = 0
        uploader.poke()
        await asyncio.sleep(0.05)  # a scan with every slot taken
        assert spool.looked <= 1
        looked_before = spool.looked
        store.gate.set()
        await eventually(lambda: not spool.segments(), within=120)
        per_job = (spool.looked - looked_before) / (2 * WAITING)
        # a job frees one slot; the scan passes the segments in flight (at most one
        # region's slots, twice) and starts the next one
        assert per_job <= 4 * CONCURRENCY, per_job
        assert len(ledger.deliveries) == 2 * WAITING
        assert spool.waiting_regions() == {}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        spool.close()


async def test_a_flush_starts_jobs_as_slots_free_up(tmp_path: Path) -> None:
    spool, store, ledger, uploader = waiting_uploader(tmp_path)
    flushing = asyncio.create_task(uploader.deliver_pending())
    try:
        await eventually(lambda: len(uploader._inflight) == 2 * CONCURRENCY, within=10)
        before = len(asyncio.all_tasks())
        await asyncio.sleep(0.05)
        assert len(asyncio.all_tasks()) == before  # no task waits for a slot
        store.gate.set()
        summary = await asyncio.wait_for(flushing, 120)
    finally:
        flushing.cancel()
        spool.close()
    assert summary.objects == 2 * WAITING
    assert summary.remaining_segments == 0
    assert len(ledger.deliveries) == 2 * WAITING


async def test_a_flush_past_its_deadline_cancels_what_runs_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    spool, _store, _ledger, uploader = waiting_uploader(tmp_path)
    try:
        summary = await uploader.deliver_pending(deadline=time.monotonic() + 0.3)
    finally:
        spool.close()
    assert summary.objects == 0
    assert summary.remaining_segments == WAITING
    assert not uploader._inflight


BROKEN = 50  # projects whose container refuses every delivery
BROKEN_SEGMENTS = 8  # each
HEALTHY = 60  # segments of one project that delivers


class RefusingStore(GatedStore):
    """Refuses every project whose id starts with `refused` at once (a container without
    the grant); the others' puts wait for the gate. Keeps the order of the puts that went
    through."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.order: list[str] = []
        self.refused = "broken"  # the prefix of the project ids refused

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        if bucket.project_id.startswith(self.refused):
            raise PermanentError("403 Forbidden", status=403)
        etag = await super().put(bucket, key, body, headers)
        self.order.append(bucket.project_id)
        return etag


def refusing_uploader(tmp_path: Path, spool: CountingSpool) -> tuple[RefusingStore, Uploader]:
    store = RefusingStore(tmp_path / "archive")
    uploader = Uploader(
        spool,
        store,
        MemoryLedger(),
        worker="w1",
        concurrency=CONCURRENCY,
        retry_max=300.0,
        delete_at=lambda _spec: int(datetime(2100, 1, 1, tzinfo=UTC).timestamp()),
    )
    return store, uploader


def sealed_spool(directory: Path, counts: dict[str, int]) -> CountingSpool:
    """`counts[project]` sealed segments (a day each) per project, projects in order."""
    directory.mkdir()
    spool = CountingSpool(directory, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    spool.open()
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    n = 0
    for project, count in counts.items():
        spool.write([(spec(project, day=days[i]), payload(n + i)) for i in range(count)])
        spool.seal_all()
        n += count
    return spool


async def test_projects_in_backoff_cost_a_scan_no_walk_over_their_backlog(
    tmp_path: Path,
) -> None:
    broken = {f"broken{i}": BROKEN_SEGMENTS for i in range(BROKEN)}
    spool = sealed_spool(tmp_path / "spool", {**broken, "healthy": HEALTHY})
    store, uploader = refusing_uploader(tmp_path, spool)
    running = asyncio.create_task(uploader.run())
    try:
        # every broken project failed once and backs off; the healthy one waits at the gate
        await eventually(lambda: all(uploader.failing(p) for p in broken), within=30)
        spool.looked = 0
        store.gate.set()
        await eventually(lambda: not spool.lacking("RegionOne", "healthy"), within=60)
        per_job = spool.looked / HEALTHY
        # the 400 refused segments are never looked at; the healthy project's are passed
        # while in flight (at most the region's slots) and one is started
        assert per_job <= 4 * CONCURRENCY, per_job
        assert store.order == ["healthy"] * HEALTHY
        for project in broken:  # kept, each project's backlog whole, for its next retry
            assert len(spool.lacking("RegionOne", project)) == BROKEN_SEGMENTS
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        spool.close()


async def test_a_project_with_a_long_backlog_shares_the_slots(tmp_path: Path) -> None:
    # "big" sealed 100 segments before "small" sealed its 5: they take turns all the same
    spool = sealed_spool(tmp_path / "spool", {"big": 100, "small": 5})
    store, uploader = refusing_uploader(tmp_path, spool)
    store.gate.set()
    running = asyncio.create_task(uploader.run())
    try:
        await eventually(lambda: not spool.segments(), within=60)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        spool.close()
    assert len(store.order) == 105
    last_small = max(i for i, project in enumerate(store.order) if project == "small")
    # in turn: small's five are done within about the first ten deliveries, not last
    assert last_small < 2 * 5 + 2 * CONCURRENCY, store.order[: last_small + 1]


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
async def test_a_cancel_that_comes_with_a_wake_up_ends_the_loop(tmp_path: Path, turns: int) -> None:
    """While a project backs off, the loop waits with a timeout; a cancel arriving as a
    job wakes it (`turns` passes of the event loop after the poke) still ends it: with
    Python 3.11's `wait_for` it was swallowed, and a stopping sink waited forever."""
    spool = sealed_spool(tmp_path / "spool", {"broken0": 2})
    _store, uploader = refusing_uploader(tmp_path, spool)
    running = asyncio.create_task(uploader.run())
    try:
        await eventually(lambda: uploader.failing("broken0"), within=10)
        uploader.poke()
        for _ in range(turns):
            await asyncio.sleep(0)
        running.cancel()
        done, _ = await asyncio.wait([running], timeout=5)
        assert done == {running}
    finally:
        running.cancel()
        await uploader.aclose()
        spool.close()


async def test_the_failing_projects_are_known_per_project(tmp_path: Path) -> None:
    """What the share check and the status ask per project (`failing`, `backoff`,
    `retry_now`) answers for that project alone, and clears with its next success."""
    spool = sealed_spool(tmp_path / "spool", {"broken0": 2, "broken1": 2, "healthy": 2})
    store, uploader = refusing_uploader(tmp_path, spool)
    store.gate.set()
    running = asyncio.create_task(uploader.run())
    try:
        await eventually(lambda: uploader.failing("broken0") and uploader.failing("broken1"))
        await eventually(lambda: not spool.lacking("RegionOne", "healthy"))
        assert not uploader.failing("healthy")
        assert uploader.delivers("healthy")
        assert set(uploader.backoff("broken0")) == {"RegionOne"}
        assert "403 Forbidden" in uploader.backoff("broken0")["RegionOne"].last_error
        assert uploader.backoff("healthy") == {}
        store.refused = "broken1"  # broken0's container is fixed
        assert uploader.retry_now("broken0") == 1
        await eventually(lambda: not spool.lacking("RegionOne", "broken0"))
        assert not uploader.failing("broken0")
        assert uploader.backoff("broken0") == {}
        assert uploader.failing("broken1")
        assert uploader.retry_now("healthy") == 0
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        spool.close()
