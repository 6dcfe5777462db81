from __future__ import annotations

import asyncio
import gc
import tracemalloc
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from stacktrail.db import tables as t
from stacktrail.db.reload import StoreTrails
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.defaults import OperatorDefaults
from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.document import TrailInput
from stacktrail.domain.trail import ArchiveFormat, default_trail
from tests.support.polling import eventually

ALICE = Actor("u-alice", "alice")


async def put(store: TrailStore, project_id: str, **members: object) -> None:
    """Store `members` as the project's overrides."""
    await store.put_trail(project_id, TrailInput.model_validate(members).requested(), ALICE)


async def test_snapshot_follows_changes(store: TrailStore, project_id: str) -> None:
    trails = StoreTrails(store, store.settings)
    directory: TrailDirectory = trails
    assert directory.get(project_id) == default_trail(project_id, store.settings)  # before load
    await trails.load()
    assert trails.version >= 0
    seen: list[frozenset[str] | None] = []
    trails.add_listener(seen.append)

    await put(store, project_id, retention_days=12, events={"include": ["identity.*"]})
    assert await trails.refresh()
    trail = trails.get(project_id)
    assert trail.retention_days == 12
    assert trail.version == 1
    assert trail.events.include == ("identity.*",)
    assert seen[-1] is not None
    assert project_id in seen[-1]
    assert not await trails.refresh()  # nothing new

    await store.delete_trail(project_id, ALICE)
    assert await trails.refresh()
    assert trails.get(project_id) == default_trail(project_id, store.settings)


async def test_defaults_change_reaches_every_trail(own_store: TrailStore) -> None:
    store = own_store
    trails = StoreTrails(store, store.settings)
    await put(store, "configured", retention_days=300)
    await trails.load()
    assert trails.get("fresh").retention_days == 90
    await store.put_defaults(
        OperatorDefaults(
            default_retention_days=7,
            max_retention_days=200,
            default_interval=timedelta(minutes=5),
            min_interval=timedelta(minutes=1),
            default_container="elsewhere",
            default_format=ArchiveFormat.CSV,
        ),
        ALICE,
    )
    seen: list[frozenset[str] | None] = []
    trails.add_listener(seen.append)
    assert await trails.refresh()
    assert seen == [None]
    fresh = trails.get("fresh")
    assert fresh.retention_days == 7
    assert fresh.archive.container == "elsewhere"
    assert fresh.archive.format == ArchiveFormat.CSV
    assert trails.get("configured").retention_days == 200  # lowered maximum applies


async def test_run_reload_applies_a_change_from_another_instance(
    store: TrailStore, project_id: str
) -> None:
    follower = StoreTrails(store, store.settings)
    await follower.load()
    task = asyncio.create_task(follower.run_reload(timedelta(milliseconds=200)))
    try:
        await put(store, project_id, enabled=False)
        took = await eventually(lambda: not follower.get(project_id).enabled, within=5.0)
        assert took < 5.0
    finally:
        task.cancel()


async def test_reload_survives_a_failing_database(store: TrailStore) -> None:
    from stacktrail.db.engine import create_engine

    broken = TrailStore(
        create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"), store.settings
    )
    trails = StoreTrails(broken, store.settings)
    task = asyncio.create_task(trails.run_reload(0.05))
    await asyncio.sleep(0.3)
    assert not task.done()
    assert trails.get("p").retention_days == 90  # the settings' defaults still serve
    task.cancel()
    await broken.close()


async def test_many_trails_share_their_parts_and_stay_small(own_store: TrailStore) -> None:
    """Trails resolved from equal overrides share one ArchiveConfig and EventFilter; a
    snapshot of thousands of trails costs a few hundred bytes each (bench/scale.py
    measures 10,000)."""
    store = own_store
    count = 2000
    ids = [f"many-{i:05d}" for i in range(count)]
    await insert_trails(store, {p: {"retention_days": 30 + i % 3} for i, p in enumerate(ids)})
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        trails = StoreTrails(store, store.settings)
        await trails.load()
        gc.collect()
        per_trail = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert per_trail < 600, f"{per_trail:.0f} bytes per trail"
    first, second, fourth = trails.get(ids[0]), trails.get(ids[1]), trails.get(ids[3])
    assert (first.retention_days, second.retention_days, fourth.retention_days) == (30, 31, 30)
    assert first.archive is second.archive is fourth.archive
    assert first.events is fourth.events
    assert first.project_id == ids[0]
    assert first.version == 1

    # one change reaches its trail only, and leaves the others as they were
    await put(store, ids[0], retention_days=5, archive={"container": "own"})
    assert await trails.refresh()
    assert trails.get(ids[0]).retention_days == 5
    assert trails.get(ids[0]).archive.container == "own"
    assert trails.get(ids[0]).version == 2
    assert trails.get(ids[3]) is fourth
    # a project nobody configured follows the defaults and shares the default parts
    assert trails.get("unknown-a").archive is trails.get("unknown-b").archive
    assert trails.get("unknown-a").archive.container == store.settings.archive_container


async def insert_trails(store: TrailStore, documents: dict[str, dict[str, object]]) -> None:
    """Configured trails written straight into the table (the API's path costs a
    transaction and a history row each)."""
    now = datetime.now(UTC)
    async with store.engine.begin() as conn:
        seq = int(
            await conn.scalar(
                update(t.config_version)
                .values(version=t.config_version.c.version + 1)
                .returning(t.config_version.c.version)
            )
            or 0
        )
        rows = [
            {
                "project_id": project_id,
                "config": document,
                "enabled": True,
                "version": 1,
                "seq": seq,
                "updated_at": now,
                "updated_by_id": ALICE.user_id,
                "updated_by_name": ALICE.user_name,
            }
            for project_id, document in documents.items()
        ]
        await conn.execute(insert(t.trails), rows)
