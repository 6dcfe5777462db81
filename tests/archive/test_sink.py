"""The archive sink's semantics, on the local directory store (no servers needed)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from stacktrail.archive.layout import CSV_COLUMNS
from stacktrail.archive.sink import ArchiveSink, flush_spool
from stacktrail.archive.spool import Spool, SpoolLockedError
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat, ArchiveSource, WriteMode
from tests.support.sinks import (
    BEFORE_MIDNIGHT,
    DAYS,
    Acks,
    by_id,
    eventually,
    make_event,
    make_trail,
    sink_settings,
    still_waiting,
    unpack,
)

A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def spool_files(settings_dir: Path) -> list[str]:
    return sorted(n for n in os.listdir(settings_dir) if not n.startswith("."))


def test_wants_only_ingest_archives_of_enabled_trails() -> None:
    sink = ArchiveSink(
        sink_settings(Path("/nonexistent")), LocalDirStore(Path("/x")), MemoryLedger()
    )
    acks = Acks()
    event = make_event(A, BEFORE_MIDNIGHT)
    assert sink.wants(acks.record(make_trail(A, "c"), event))
    assert not sink.wants(acks.record(make_trail(A, "c", enabled=False), event))
    assert not sink.wants(acks.record(make_trail(A, "c", archive_enabled=False), event))
    assert not sink.wants(acks.record(make_trail(A, "c", source=ArchiveSource.SEARCH), event))


async def test_acked_when_spooled_delivered_per_project_and_day(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    events = {
        p: [make_event(p, BEFORE_MIDNIGHT + timedelta(minutes=i), i) for i in range(10)]
        for p in (A, B)
    }
    trails = {p: make_trail(p, "audit", prefix="trail") for p in (A, B)}
    for i in range(10):
        for p in (A, B):
            await sink.put(acks.record(trails[p], events[p][i]))
    await acks.wait(20)
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
    assert sink.pending_bytes(A) > 0  # spooled, not delivered: the interval is an hour
    assert await store.list_keys(Bucket(A, "RegionOne", "audit")) == []

    summary = await sink.flush()
    assert summary.objects == 4
    assert summary.records == 20
    assert summary.errors == []
    assert sink.pending_bytes(A) == sink.pending_bytes(B) == 0
    keys = await store.list_keys(Bucket(A, "RegionOne", "audit"))
    assert [k.rsplit("/", 1)[0] for k in keys] == sorted(
        f"trail/{p}/RegionOne/{d.replace('-', '/')}" for p in (A, B) for d in DAYS
    )
    for key in keys:
        project = key.split("/")[1]
        events_in = unpack(
            (await store.get(Bucket(project, "RegionOne", "audit"), key)).body, ArchiveFormat.JSON
        )
        expected = by_id(events[project])
        assert all(e == expected[e["id"]] for e in events_in)
        day = "-".join(key.split("/")[3:6])
        assert {e["eventTime"][:10] for e in events_in} == {day}
    assert len(ledger.deliveries) == 4
    assert {d.key for d in ledger.deliveries} == set(keys)
    assert sum(d.records for d in ledger.deliveries) == 20
    await sink.stop(1)
    assert spool_files(settings.spool_dir) == []


async def test_segments_go_out_after_their_interval(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    acks = Acks()
    trail = make_trail(A, "audit", interval=timedelta(seconds=1))
    await sink.put(acks.record(trail, make_event(A, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    bucket = Bucket(A, "RegionOne", "audit")
    keys: list[str] = []

    async def delivered() -> bool:
        keys[:] = await store.list_keys(bucket)
        return bool(keys)

    for _ in range(100):
        if await delivered():
            break
        await asyncio.sleep(0.1)
    assert len(keys) == 1
    await sink.stop(1)


@pytest.mark.parametrize("fmt", [ArchiveFormat.NDJSON, ArchiveFormat.CSV])
async def test_other_formats(tmp_path: Path, fmt: ArchiveFormat) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    acks = Acks()
    events = [make_event(A, BEFORE_MIDNIGHT, i) for i in range(5)]
    for event in events:
        await sink.put(acks.record(make_trail(A, "audit", fmt=fmt), event))
    await acks.wait(5)
    await sink.flush()
    await sink.stop(1)
    (key,) = await store.list_keys(Bucket(A, "RegionOne", "audit"))
    body = (await store.get(Bucket(A, "RegionOne", "audit"), key)).body
    if fmt is ArchiveFormat.CSV:
        assert key.endswith(".csv.gz")
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(body).decode())))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert [r["id"] for r in rows] == [e.id for e in events]
    else:
        assert key.endswith(".ndjson.gz")
        assert unpack(body, fmt) == [e.body for e in events]


async def test_unusable_names_are_rejected_not_dropped(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    sink = ArchiveSink(settings, LocalDirStore(settings.archive_dir), MemoryLedger())
    await sink.start()
    acks = Acks()
    await sink.put(acks.record(make_trail("../../etc", "audit"), make_event(A, BEFORE_MIDNIGHT)))
    await sink.put(
        acks.record(make_trail(A, "audit", prefix="a/../b"), make_event(A, BEFORE_MIDNIGHT))
    )
    await acks.wait(2)
    assert set(acks.outcomes.values()) == {Outcome.REJECTED}
    assert all("not usable" in r or "unusable" in r for r in acks.reasons.values())
    await sink.stop(1)


async def test_stop_keeps_what_it_cannot_deliver_for_the_next_start(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    ledger = MemoryLedger()
    trail = make_trail(A, "customer", write_mode=WriteMode.ACL)  # no such directory yet
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    events = [make_event(A, BEFORE_MIDNIGHT, i) for i in range(3)]
    for event in events:
        await sink.put(acks.record(trail, event))
    await sink.stop(0.5)
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}  # durable in the spool
    assert any("does not grant write" in e.message for e in ledger.errors)
    # kept sealed (in the spool's journal), with its stamp, for the next start
    kept = Spool(settings.spool_dir, segment_max_bytes=1 << 20, max_bytes=1 << 30)
    report = kept.open()
    assert (report.sealed, report.recovered) == (1, 0)
    (seg,) = kept.segments()
    assert [orjson.loads(r)["id"] for r in kept.read(seg)] == [e.id for e in events]
    kept.close()

    late = Acks()
    record = late.record(trail, make_event(A, BEFORE_MIDNIGHT))
    await sink.put(record)  # after stop
    assert late.outcomes == {record.event.id: Outcome.RETRY}

    (settings.archive_dir / "customer").mkdir(parents=True)
    again = ArchiveSink(settings, store, ledger)
    await again.start()
    bucket = Bucket(A, "RegionOne", "customer", WriteMode.ACL)
    found: list[str] = []

    async def poll() -> None:
        while not found:
            found.extend(await store.list_keys(bucket))
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 10)
    (key,) = found
    assert unpack((await store.get(bucket, key)).body, ArchiveFormat.JSON) == [
        e.body for e in events
    ]
    await again.stop(1)


async def test_flush_spool_without_a_pipeline(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    with pytest.raises(SpoolLockedError):
        await flush_spool(settings, store, MemoryLedger())
    acks = Acks()
    trail = make_trail(A, "customer", write_mode=WriteMode.ACL)
    await sink.put(acks.record(trail, make_event(A, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    await sink.stop(0.2)  # cannot deliver: the directory is missing

    (settings.archive_dir / "customer").mkdir(parents=True)
    ledger = MemoryLedger()
    summary = await flush_spool(settings, store, ledger)
    assert (summary.objects, summary.records, summary.remaining_segments) == (1, 1, 0)
    assert len(ledger.deliveries) == 1
    assert spool_files(settings.spool_dir) == []


async def test_a_full_spool_makes_put_wait_and_never_drops(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path, spool_max_bytes=1 << 16, archive_segment_max_bytes=8 << 10)
    store = LocalDirStore(settings.archive_dir)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    trail = make_trail(A, "customer", write_mode=WriteMode.ACL)  # uploads fail for now
    events = []
    blocked = None
    for i in range(200):
        event = make_event(A, BEFORE_MIDNIGHT, i)
        events.append(event)
        put = asyncio.create_task(sink.put(acks.record(trail, event)))
        await asyncio.sleep(0)
        if await still_waiting(sink, put):
            blocked = put
            break
    assert blocked is not None, "put never waited although nothing can be delivered"
    # It waits because the spool is full, not earlier.
    room = settings.spool_max_bytes - sink.pending_bytes(A)
    assert 0 <= room < settings.archive_segment_max_bytes
    assert Outcome.REJECTED not in acks.outcomes.values()

    (settings.archive_dir / "customer").mkdir(parents=True)  # the store accepts again
    await asyncio.wait_for(blocked, 10)
    await acks.wait(len(events))
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
    await sink.flush()
    bucket = Bucket(A, "RegionOne", "customer", WriteMode.ACL)
    archived = []
    for key in await store.list_keys(bucket):
        archived.extend(unpack((await store.get(bucket, key)).body, ArchiveFormat.JSON))
    assert sorted(e["id"] for e in archived) == sorted(e.id for e in events)
    await sink.stop(1)
    await eventually(lambda: sink.pending_bytes(A) == 0)


async def test_late_events_past_their_retention_are_dropped_visibly(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    old = make_event(A, BEFORE_MIDNIGHT - timedelta(days=10))
    await sink.put(acks.record(make_trail(A, "audit", retention_days=3), old))
    await acks.wait(1)
    summary = await sink.flush()
    assert (summary.objects, summary.expired, summary.remaining_segments) == (0, 1, 0)
    (error,) = ledger.errors
    assert "after their retention of 3 days" in error.message
    assert await store.list_keys(Bucket(A, "RegionOne", "audit")) == []
    await sink.stop(1)


class GatedStore(LocalDirStore):
    """The local directory store, whose puts wait while `gate` is clear (a slow store)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()
        self.gate.set()

    async def put(self, bucket: Bucket, key: str, body: bytes, headers: Mapping[str, str]) -> str:
        await self.gate.wait()
        return await super().put(bucket, key, body, headers)


async def test_a_healthy_project_over_its_share_holds_nobody_up(tmp_path: Path) -> None:
    """Its share bounds a project whose deliveries fail; one whose deliveries work goes
    beyond it without waiting (its segments are sealed at once); only the whole spool
    bound makes everybody wait."""
    share = 8 << 10
    settings = sink_settings(tmp_path, spool_project_max_bytes=share)
    store = GatedStore(settings.archive_dir)
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    try:
        acks = Acks()
        trail = make_trail(A, "audit")
        await sink.put(acks.record(trail, make_event(A, BEFORE_MIDNIGHT, 0)))
        await acks.wait(1)
        assert (await sink.flush()).objects == 1  # A's destination works
        store.gate.clear()  # and is slow from now on
        for i in range(1, 60):
            put = asyncio.create_task(
                sink.put(acks.record(trail, make_event(A, BEFORE_MIDNIGHT, i)))
            )
            assert not await still_waiting(sink, put), f"put {i} waited"
        await acks.wait(60)
        assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
        assert sink.pending_bytes(A) > share  # beyond its share, bounded by the spool
        store.gate.set()
        await eventually(lambda: sink.pending_bytes(A) == 0, within=20)
    finally:
        store.gate.set()
        await sink.stop(1)
