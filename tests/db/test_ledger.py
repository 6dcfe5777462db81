from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from stacktrail.db import tables as t
from stacktrail.db.ledger import DAILY_KEEP_DAYS, INGEST_KEEP, DailyCount, SqlLedger, hour_of
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.ledger import DeliveredObject, DeliveryError, DeliveryLedger

NOW = datetime(2025, 6, 1, 12, 30, tzinfo=UTC)


def delivered(
    project_id: str, key: str, at: datetime, region: str = "RegionOne"
) -> DeliveredObject:
    return DeliveredObject(
        project_id=project_id,
        region=region,
        container="audit",
        key=key,
        day=at.strftime("%Y-%m-%d"),
        records=10,
        bytes=1234,
        sha256="ab" * 32,
        delivered_at=at,
    )


def test_sql_ledger_is_a_delivery_ledger(ledger: SqlLedger) -> None:
    implementation: DeliveryLedger = ledger
    assert implementation is ledger


async def test_deliveries_and_errors_make_the_status(ledger: SqlLedger, project_id: str) -> None:
    assert await ledger.status(project_id) == []
    await ledger.record_error(DeliveryError(project_id, "RegionOne", "container missing", NOW))
    await ledger.record_error(
        DeliveryError(project_id, "RegionOne", "x" * 5000, NOW + timedelta(minutes=1))
    )
    [status] = await ledger.status(project_id)
    assert status.in_error
    assert status.consecutive_errors == 2
    assert status.last_error is not None
    assert len(status.last_error) == 2000
    assert status.last_key is None

    first = delivered(project_id, "a/1.json.gz", NOW + timedelta(minutes=2))
    await ledger.record_delivery(first)
    await ledger.record_delivery(first)  # a replayed upload overwrote the same object
    await ledger.record_delivery(delivered(project_id, "b/2.json.gz", NOW, region="RegionTwo"))
    one, two = await ledger.status(project_id)
    assert (one.region, two.region) == ("RegionOne", "RegionTwo")
    assert not one.in_error
    assert one.consecutive_errors == 0
    assert one.last_key == "a/1.json.gz"
    assert one.last_success_at == first.delivered_at
    assert one.last_error is not None  # kept, but older than the success
    assert two.last_error is None
    assert two.last_day == "2025-06-01"
    objects = await ledger.deliveries(project_id)
    assert [o.key for o in objects] == ["a/1.json.gz", "b/2.json.gz"]
    assert objects[0] == first
    assert await ledger.deliveries(project_id, day="2024-01-01") == []


async def test_event_type_catalogue(ledger: SqlLedger) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b = f"{tag}.identity.project.created", f"{tag}.compute.instance.create.end"
    await ledger.record_event_types({a: 3, b: 1, "": 5, f"{tag}.zero": 0}, seen_at=NOW)
    later = NOW + timedelta(hours=1)
    await ledger.record_event_types({a: 2}, seen_at=later)
    entries = {e.event_type: e for e in await ledger.event_types() if e.event_type.startswith(tag)}
    assert set(entries) == {a, b}
    assert entries[a].count == 5
    assert entries[a].first_seen == NOW
    assert entries[a].last_seen == later
    assert entries[b].count == 1


async def test_event_types_per_project(ledger: SqlLedger) -> None:
    tag = uuid.uuid4().hex[:8]
    a, b = f"{tag}a", f"{tag}b"
    shared, only_b = f"{tag}.identity.project.created", f"{tag}.compute.instance.create.end"
    await ledger.record_project_event_types({(a, shared): 2, (b, shared): 1, (b, only_b): 4})
    await ledger.record_project_event_types({(a, shared): 3, (a, ""): 1}, seen_at=NOW)
    of_a = await ledger.event_types(a)
    assert [(e.event_type, e.count) for e in of_a] == [(shared, 5)]
    assert {(e.event_type, e.count) for e in await ledger.event_types(b)} == {
        (shared, 1),
        (only_b, 4),
    }
    assert await ledger.event_types(f"{tag}c") == []
    # the cloud-wide catalogue is kept on its own
    assert not [e for e in await ledger.event_types() if e.event_type.startswith(tag)]


async def test_one_flush_of_thousands_of_active_projects_is_recorded(ledger: SqlLedger) -> None:
    """5,000 projects with 3 event types each: 15,000 rows of 5 values in one flush. As one
    multi-row VALUES that was 75,000 parameters, over PostgreSQL's 32,767 a statement, and
    the whole flush failed (the counters of every project were lost)."""
    tag = uuid.uuid4().hex[:8]
    projects = [f"{tag}{i:024x}" for i in range(5000)]
    kinds = [f"{tag}.identity.authenticate", f"{tag}.compute.create", f"{tag}.network.update"]
    now = datetime.now(UTC)
    await ledger.record_project_event_types({(p, kind): 2 for p in projects for kind in kinds})
    await ledger.record_ingest_many({(p, now): 3 for p in projects})
    await ledger.record_event_types({kind: 5000 for kind in kinds})
    for project in (projects[0], projects[2500], projects[-1]):
        assert [(e.event_type, e.count) for e in await ledger.event_types(project)] == [
            (kind, 2) for kind in sorted(kinds)
        ]
        assert (await ledger.event_counts(project, now)).last_hour == 3
    catalogue = {e.event_type: e.count for e in await ledger.event_types()}
    assert {kind: catalogue[kind] for kind in kinds} == {kind: 5000 for kind in kinds}


async def test_ingest_counters(ledger: SqlLedger, project_id: str) -> None:
    now = datetime.now(UTC)
    current = hour_of(now)
    await ledger.record_ingest(project_id, now, 5)
    await ledger.record_ingest_many(
        {
            (project_id, current): 2,
            (project_id, current - timedelta(hours=1)): 10,
            (project_id, current - timedelta(hours=5)): 100,
            (project_id, current - timedelta(hours=30)): 1000,
            ("someone-else", current): 7,
        }
    )
    counts = await ledger.event_counts(project_id, now)
    assert counts.last_hour == 17
    assert counts.last_day == 117
    assert counts.since_hour == current - timedelta(hours=1)
    assert (await ledger.event_counts(uuid.uuid4().hex, now)).last_day == 0


async def test_old_ingest_counters_are_pruned(ledger: SqlLedger, project_id: str) -> None:
    old = hour_of(datetime.now(UTC)) - INGEST_KEEP - timedelta(hours=2)
    await ledger.record_ingest(project_id, old, 9)
    counts = await ledger.event_counts(project_id, old + timedelta(minutes=5))
    assert counts.last_hour == 0  # pruned by the same batch that wrote it


async def daily_rows(store: TrailStore, project_id: str) -> dict[date, int]:
    """The project's rows of the daily counters, as stored."""
    c = t.ingest_daily.c
    query = select(c.day, c.count).where(c.project_id == project_id)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.day: int(row._mapping["count"]) for row in rows}


async def test_daily_counts_add_up_per_utc_day(
    ledger: SqlLedger, store: TrailStore, project_id: str
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    midnight = datetime.combine(today, datetime.min.time(), UTC)
    other = uuid.uuid4().hex
    await ledger.record_ingest_many(
        {
            (project_id, midnight): 1,  # 00:00 UTC: today
            (project_id, midnight - timedelta(minutes=1)): 2,  # 23:59 UTC: yesterday
            (project_id, midnight - timedelta(days=3, hours=1)): 30,
            (project_id, midnight - timedelta(days=29) + timedelta(hours=5)): 4,
            (project_id, midnight - timedelta(days=30)): 500,  # before the 30 days shown
            (other, midnight): 7,
            (project_id, midnight + timedelta(hours=1)): 0,  # nothing to add
        }
    )
    # a second batch adds to the same days; times in other zones count by their UTC day
    east, west = timezone(timedelta(hours=2)), timezone(-timedelta(hours=5))
    await ledger.record_ingest_many(
        {
            (project_id, midnight): 10,
            (project_id, (midnight - timedelta(hours=1)).astimezone(east)): 100,  # yesterday in UTC
            (project_id, (midnight + timedelta(hours=2)).astimezone(west)): 20,  # today in UTC
        }
    )

    days = await ledger.events_per_day(project_id, 30, now)
    assert len(days) == 30
    assert [d.day for d in days] == [today - timedelta(days=back) for back in range(29, -1, -1)]
    counts = {d.day: d.count for d in days}
    assert counts[today] == 31
    assert counts[today - timedelta(days=1)] == 102
    assert counts[today - timedelta(days=4)] == 30  # 23:00 UTC the evening before day -3
    assert counts[today - timedelta(days=29)] == 4
    assert sum(counts.values()) == 31 + 102 + 30 + 4  # every other day counts 0
    assert days[0] == DailyCount(today - timedelta(days=29), 4)
    assert await daily_rows(store, project_id) == {
        today: 31,
        today - timedelta(days=1): 102,
        today - timedelta(days=4): 30,
        today - timedelta(days=29): 4,
        today - timedelta(days=30): 500,  # kept, only not asked for
    }
    assert (await ledger.events_per_day(other, 1, now)) == [DailyCount(today, 7)]
    assert [d.count for d in await ledger.events_per_day(uuid.uuid4().hex, 30, now)] == [0] * 30
    # the hourly counters get the same batch
    assert (await ledger.event_counts(project_id, midnight)).last_hour == 31 + 102


async def test_daily_counts_outlive_the_hourly_ones(ledger: SqlLedger, project_id: str) -> None:
    now = datetime.now(UTC)
    old_hour = hour_of(now) - INGEST_KEEP - timedelta(days=2)
    await ledger.record_ingest(project_id, old_hour, 9)
    assert (await ledger.event_counts(project_id, old_hour)).last_hour == 0  # pruned
    days = await ledger.events_per_day(project_id, 30, now)
    assert {d.day: d.count for d in days if d.count} == {old_hour.date(): 9}


async def test_old_daily_counts_are_pruned(
    ledger: SqlLedger, store: TrailStore, project_id: str
) -> None:
    today = datetime.now(UTC).date()
    oldest_kept = today - timedelta(days=DAILY_KEEP_DAYS)
    async with store.engine.begin() as conn:  # rows a long-running pipeline wrote earlier
        await conn.execute(
            t.ingest_daily.insert(),
            [
                {"project_id": project_id, "day": oldest_kept, "count": 5},
                {"project_id": project_id, "day": oldest_kept - timedelta(days=1), "count": 6},
                {"project_id": project_id, "day": today - timedelta(days=400), "count": 7},
            ],
        )
    noon = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=12)
    await ledger.record_ingest_many(
        {
            (project_id, noon - timedelta(days=DAILY_KEEP_DAYS + 3)): 8,  # older than kept
            (project_id, noon - timedelta(days=DAILY_KEEP_DAYS)): 1,
            ("another-project", noon): 1,
        }
    )
    assert await daily_rows(store, project_id) == {oldest_kept: 6}


async def test_daily_counts_under_concurrent_batches(ledger: SqlLedger, project_id: str) -> None:
    now = datetime.now(UTC)
    batch = {(project_id, now): 3, (project_id, now - timedelta(days=1)): 1}
    await asyncio.gather(*(ledger.record_ingest_many(batch) for _ in range(20)))
    days = await ledger.events_per_day(project_id, 2, now)
    assert [d.count for d in days] == [20, 60]


async def test_events_per_day_bounds(ledger: SqlLedger, project_id: str) -> None:
    for days in (0, DAILY_KEEP_DAYS + 1):
        with pytest.raises(ValueError, match="days must be between"):
            await ledger.events_per_day(project_id, days)
    with pytest.raises(ValueError, match="naive"):
        await ledger.events_per_day(project_id, 30, datetime(2025, 1, 1))
    late = datetime(2025, 6, 1, 23, 30, tzinfo=timezone(-timedelta(hours=3)))
    [only] = await ledger.events_per_day(project_id, 1, late)
    assert only.day == date(2025, 6, 2)  # 02:30 UTC


def test_hour_of_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        hour_of(datetime(2025, 1, 1, 12, 0))
    assert hour_of(NOW) == datetime(2025, 6, 1, 12, tzinfo=UTC)
