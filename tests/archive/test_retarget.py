"""A changed trail destination re-targets spooled data that never made it, also after a
restart; "retry now" ends the backoff. On the local directory store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat, Trail, WriteMode
from tests.support.sinks import (
    BEFORE_MIDNIGHT,
    Acks,
    make_event,
    make_trail,
    sink_settings,
    unpack,
)

A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"


class Trails:
    """The live trails, as the config store's directory hands them out."""

    def __init__(self, trail: Trail) -> None:
        self.trail = trail

    def get(self, project_id: str) -> Trail:
        return self.trail


async def keys_eventually(store: LocalDirStore, bucket: Bucket, timeout: float = 10) -> list[str]:
    async def poll() -> list[str]:
        while True:
            found = await store.list_keys(bucket)
            if found:
                return found
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


async def test_spooled_events_follow_the_new_container(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path, archive_retry_max="1h")
    store = LocalDirStore(settings.archive_dir)
    ledger = MemoryLedger()
    broken = make_trail(A, "missing", write_mode=WriteMode.ACL)  # no such directory
    trails = Trails(broken)
    sink = ArchiveSink(settings, store, ledger, directory=trails)
    await sink.start()
    acks = Acks()
    events = [make_event(A, BEFORE_MIDNIGHT, i) for i in range(3)]
    for event in events:
        await sink.put(acks.record(broken, event))
    await acks.wait(3)
    summary = await sink.flush()
    assert summary.objects == 0
    assert summary.errors
    assert sink.delivery_backoff(A)  # waits an hour before the next attempt

    trails.trail = make_trail(A, "fixed", prefix="moved")  # the project fixes its trail
    assert sink.retry_now(A) == 1
    bucket = Bucket(A, "RegionOne", "fixed")
    (key,) = await keys_eventually(store, bucket)
    assert key.startswith(f"moved/{A}/RegionOne/")
    assert unpack((await store.get(bucket, key)).body, ArchiveFormat.JSON) == [
        e.body for e in events
    ]
    for _ in range(200):  # the ledger hears of it just after the store has it
        if ledger.deliveries:
            break
        await asyncio.sleep(0.05)
    assert [d.container for d in ledger.deliveries] == ["fixed"]
    assert sink.delivery_backoff(A) == {}  # the status clears
    assert not (settings.archive_dir / "missing").exists()
    await sink.stop(1)


async def test_after_a_restart_too(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    broken = make_trail(A, "missing", write_mode=WriteMode.ACL)
    sink = ArchiveSink(settings, store, MemoryLedger(), directory=Trails(broken))
    await sink.start()
    acks = Acks()
    await sink.put(acks.record(broken, make_event(A, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    await sink.stop(0.3)  # not delivered: stays sealed in the spool

    again = ArchiveSink(settings, store, MemoryLedger(), directory=Trails(make_trail(A, "fixed")))
    await again.start()
    assert len(await keys_eventually(store, Bucket(A, "RegionOne", "fixed"))) == 1
    await again.stop(1)


async def test_an_unusable_new_destination_keeps_the_old_one(tmp_path: Path) -> None:
    settings = sink_settings(tmp_path)
    store = LocalDirStore(settings.archive_dir)
    (settings.archive_dir / "old").mkdir(parents=True)
    old = make_trail(A, "old", write_mode=WriteMode.ACL)
    trails = Trails(old)
    sink = ArchiveSink(settings, store, MemoryLedger(), directory=trails)
    await sink.start()
    acks = Acks()
    await sink.put(acks.record(old, make_event(A, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    trails.trail = make_trail(A, "..")  # never a name outside the archive root
    summary = await sink.flush()
    assert summary.objects == 1
    assert len(await store.list_keys(Bucket(A, "RegionOne", "old", WriteMode.ACL))) == 1
    await sink.stop(1)
