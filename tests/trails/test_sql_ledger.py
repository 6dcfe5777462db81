from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from stacktrail.trails.ledger import DeliveredObject, DeliveryError, DeliveryLedger
from stacktrail.trails.sql_ledger import INGEST_KEEP, SqlLedger, hour_of

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


def test_hour_of_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        hour_of(datetime(2025, 1, 1, 12, 0))
    assert hour_of(NOW) == datetime(2025, 6, 1, 12, tzinfo=UTC)
