"""The delivery ledger, the event type catalogue and ingest counters in the config store.

The archive uploader records deliveries and errors; the pipeline records the event
types it saw and how many events each project ingested per hour and per UTC day (both
in batches). The status API reads all of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.db import tables as t
from stacktrail.domain.ledger import DeliveredObject, DeliveryError

MAX_EVENT_TYPE_LENGTH = 255
MAX_ERROR_LENGTH = 2000
INGEST_KEEP = timedelta(days=8)  # hourly counters older than this are pruned
DAILY_KEEP_DAYS = 35  # daily counters of days further back than this are pruned


@dataclass(frozen=True, slots=True)
class RegionStatus:
    project_id: str
    region: str
    last_container: str | None
    last_key: str | None
    last_day: str | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int

    @property
    def in_error(self) -> bool:
        return self.last_error_at is not None and (
            self.last_success_at is None or self.last_error_at > self.last_success_at
        )


@dataclass(frozen=True, slots=True)
class EventCounts:
    last_hour: int  # events in the current and the previous clock hour
    last_day: int  # events in the current and the previous 24 clock hours
    since_hour: datetime
    since_day: datetime


@dataclass(frozen=True, slots=True)
class DailyCount:
    day: date  # a UTC day
    count: int  # events ingested for the project on that day


@dataclass(frozen=True, slots=True)
class EventTypeEntry:
    event_type: str
    first_seen: datetime
    last_seen: datetime
    count: int


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC clock hour `moment` falls in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime; give UTC times")
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class SqlLedger:
    """Implements `DeliveryLedger` on the config store's database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def _dialect(self) -> str:
        return self._engine.dialect.name

    # --- DeliveryLedger

    async def record_delivery(self, obj: DeliveredObject) -> None:
        """Record an uploaded object; a re-upload of the same key only refreshes it."""
        insert = t.upsert(self._dialect, t.deliveries).values(
            project_id=obj.project_id,
            region=obj.region,
            container=obj.container,
            key=obj.key,
            day=obj.day,
            records=obj.records,
            bytes=obj.bytes,
            sha256=obj.sha256,
            delivered_at=obj.delivered_at,
            object_sha256=obj.object_sha256,
            first_event_time=obj.first_event_time,
            last_event_time=obj.last_event_time,
        )
        insert = insert.on_conflict_do_update(
            index_elements=["project_id", "region", "container", "key"],
            set_={
                "records": insert.excluded.records,
                "bytes": insert.excluded.bytes,
                "sha256": insert.excluded.sha256,
                "delivered_at": insert.excluded.delivered_at,
                "object_sha256": insert.excluded.object_sha256,
                "first_event_time": insert.excluded.first_event_time,
                "last_event_time": insert.excluded.last_event_time,
            },
        )
        status = t.upsert(self._dialect, t.delivery_status).values(
            project_id=obj.project_id,
            region=obj.region,
            last_container=obj.container,
            last_key=obj.key,
            last_day=obj.day,
            last_success_at=obj.delivered_at,
            consecutive_errors=0,
        )
        status = status.on_conflict_do_update(
            index_elements=["project_id", "region"],
            set_={
                "last_container": status.excluded.last_container,
                "last_key": status.excluded.last_key,
                "last_day": status.excluded.last_day,
                "last_success_at": status.excluded.last_success_at,
                "consecutive_errors": 0,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(insert)
            await conn.execute(status)

    async def record_error(self, error: DeliveryError) -> None:
        message = error.message[:MAX_ERROR_LENGTH]
        status = t.upsert(self._dialect, t.delivery_status).values(
            project_id=error.project_id,
            region=error.region,
            last_error=message,
            last_error_at=error.at,
            consecutive_errors=1,
        )
        status = status.on_conflict_do_update(
            index_elements=["project_id", "region"],
            set_={
                "last_error": status.excluded.last_error,
                "last_error_at": status.excluded.last_error_at,
                "consecutive_errors": t.delivery_status.c.consecutive_errors + 1,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(status)

    # --- pipeline counters
    #
    # Each upsert is one statement executed with a list of rows (executemany): compiled
    # once and cached, its rows sent in pages, so a flush of thousands of active projects
    # stays cheap for the event loop and within PostgreSQL's 32,767 parameters a
    # statement (one multi-row VALUES of 5,000 projects' event types broke it).

    async def record_event_types(
        self, counts: Mapping[str, int], seen_at: datetime | None = None
    ) -> None:
        """Add to the catalogue of event types (event type -> events seen since last call)."""
        now = seen_at or datetime.now(UTC)
        merged: dict[str, int] = {}
        for name, count in counts.items():
            if name and count > 0:  # names that collide after truncation are added up
                key = name[:MAX_EVENT_TYPE_LENGTH]
                merged[key] = merged.get(key, 0) + count
        if not merged:
            return
        rows = [
            {"event_type": name, "first_seen": now, "last_seen": now, "count": count}
            for name, count in sorted(merged.items())
        ]
        insert = t.upsert(self._dialect, t.event_types)
        insert = insert.on_conflict_do_update(
            index_elements=["event_type"],
            set_={
                "last_seen": insert.excluded.last_seen,
                "count": t.event_types.c.count + insert.excluded.count,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(insert, rows)

    async def record_project_event_types(
        self, counts: Mapping[tuple[str, str], int], seen_at: datetime | None = None
    ) -> None:
        """Add to each project's catalogue ((project id, event type) -> events seen)."""
        now = seen_at or datetime.now(UTC)
        merged: dict[tuple[str, str], int] = {}
        for (project_id, name), count in counts.items():
            if name and count > 0:
                key = (project_id, name[:MAX_EVENT_TYPE_LENGTH])
                merged[key] = merged.get(key, 0) + count
        if not merged:
            return
        rows = [
            {
                "project_id": project_id,
                "event_type": name,
                "first_seen": now,
                "last_seen": now,
                "count": count,
            }
            for (project_id, name), count in sorted(merged.items())
        ]
        table = t.project_event_types
        insert = t.upsert(self._dialect, table)
        insert = insert.on_conflict_do_update(
            index_elements=["project_id", "event_type"],
            set_={
                "last_seen": insert.excluded.last_seen,
                "count": table.c.count + insert.excluded.count,
            },
        )
        async with self._engine.begin() as conn:
            await conn.execute(insert, rows)

    async def record_ingest(self, project_id: str, hour: datetime, count: int) -> None:
        """Add `count` events ingested for a project in the clock hour of `hour`."""
        await self.record_ingest_many({(project_id, hour): count})

    async def record_ingest_many(self, counts: Mapping[tuple[str, datetime], int]) -> None:
        """Add many (project_id, hour) -> count to the hourly and the daily (UTC day)
        counters in one transaction; prunes counters beyond each one's retention."""
        merged: dict[tuple[str, datetime], int] = {}
        for (project_id, moment), count in counts.items():
            if count > 0:
                key = (project_id, hour_of(moment))
                merged[key] = merged.get(key, 0) + count
        if not merged:
            return
        now = datetime.now(UTC)
        hour_cutoff = hour_of(now) - INGEST_KEEP
        day_cutoff = now.date() - timedelta(days=DAILY_KEEP_DAYS)
        by_day: dict[tuple[str, date], int] = {}
        for (project_id, hour), count in merged.items():
            if hour.date() >= day_cutoff:  # older days would be pruned right away
                day_key = (project_id, hour.date())
                by_day[day_key] = by_day.get(day_key, 0) + count
        # rows in key order, so concurrent writers lock them in the same order
        hourly = t.upsert(self._dialect, t.ingest_counts)
        hourly = hourly.on_conflict_do_update(
            index_elements=["project_id", "hour"],
            set_={"count": t.ingest_counts.c.count + hourly.excluded.count},
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                hourly,
                [
                    {"project_id": project_id, "hour": hour, "count": count}
                    for (project_id, hour), count in sorted(merged.items())
                ],
            )
            if by_day:
                daily = t.upsert(self._dialect, t.ingest_daily)
                daily = daily.on_conflict_do_update(
                    index_elements=["project_id", "day"],
                    set_={"count": t.ingest_daily.c.count + daily.excluded.count},
                )
                await conn.execute(
                    daily,
                    [
                        {"project_id": project_id, "day": day, "count": count}
                        for (project_id, day), count in sorted(by_day.items())
                    ],
                )
            await conn.execute(t.ingest_counts.delete().where(t.ingest_counts.c.hour < hour_cutoff))
            await conn.execute(t.ingest_daily.delete().where(t.ingest_daily.c.day < day_cutoff))

    # --- reading

    async def event_counts(self, project_id: str, now: datetime | None = None) -> EventCounts:
        current = hour_of(now or datetime.now(UTC))
        since_hour = current - timedelta(hours=1)
        since_day = current - timedelta(hours=24)
        c = t.ingest_counts.c
        query = select(
            func.coalesce(func.sum(c.count).filter(c.hour >= since_hour), 0),
            func.coalesce(func.sum(c.count), 0),
        ).where(c.project_id == project_id, c.hour >= since_day)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).one()
        return EventCounts(int(row[0]), int(row[1]), since_hour, since_day)

    async def events_per_day(
        self, project_id: str, days: int, now: datetime | None = None
    ) -> list[DailyCount]:
        """Events ingested per UTC day for the last `days` days, oldest first, ending with
        today (so far); days without events count 0."""
        if not 1 <= days <= DAILY_KEEP_DAYS:
            raise ValueError(f"days must be between 1 and {DAILY_KEEP_DAYS}, not {days}")
        moment = now or datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("naive datetime; give UTC times")
        today = moment.astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        c = t.ingest_daily.c
        query = select(c.day, c.count).where(
            c.project_id == project_id, c.day >= first, c.day <= today
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        counts = {row.day: int(row._mapping["count"]) for row in rows}
        return [
            DailyCount(day, counts.get(day, 0))
            for day in (first + timedelta(days=n) for n in range(days))
        ]

    async def failing_projects(self, limit: int = 10_000) -> list[str]:
        """Projects whose last delivery in some region failed, ordered by id."""
        c = t.delivery_status.c
        query = (
            select(c.project_id)
            .where(
                c.last_error_at.is_not(None),
                or_(c.last_success_at.is_(None), c.last_error_at > c.last_success_at),
            )
            .distinct()
            .order_by(c.project_id)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [row.project_id for row in (await conn.execute(query)).all()]

    async def status(self, project_id: str) -> list[RegionStatus]:
        query = (
            select(t.delivery_status)
            .where(t.delivery_status.c.project_id == project_id)
            .order_by(t.delivery_status.c.region)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RegionStatus(
                project_id=row.project_id,
                region=row.region,
                last_container=row.last_container,
                last_key=row.last_key,
                last_day=row.last_day,
                last_success_at=row.last_success_at,
                last_error=row.last_error,
                last_error_at=row.last_error_at,
                consecutive_errors=row.consecutive_errors,
            )
            for row in rows
        ]

    async def deliveries(
        self, project_id: str, *, day: str | None = None, limit: int = 100
    ) -> list[DeliveredObject]:
        """Objects delivered for a project (optionally one event day), newest first."""
        c = t.deliveries.c
        query = select(t.deliveries).where(c.project_id == project_id)
        if day is not None:
            query = query.where(c.day == day)
        query = query.order_by(c.delivered_at.desc(), c.id.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            DeliveredObject(
                project_id=row.project_id,
                region=row.region,
                container=row.container,
                key=row.key,
                day=row.day,
                records=row.records,
                bytes=row.bytes,
                sha256=row.sha256,
                delivered_at=row.delivered_at,
            )
            for row in rows
        ]

    async def event_types(self, project_id: str | None = None) -> list[EventTypeEntry]:
        """The cloud-wide catalogue, or only the types of `project_id`'s events."""
        if project_id is None:
            query = select(t.event_types).order_by(t.event_types.c.event_type)
        else:
            table = t.project_event_types
            query = (
                select(table).where(table.c.project_id == project_id).order_by(table.c.event_type)
            )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            EventTypeEntry(
                row.event_type, row.first_seen, row.last_seen, int(row._mapping["count"])
            )
            for row in rows
        ]
