"""Search-sourced delivery: trails with `archive.source = search` get their events
exported from search, window by window, instead of from the local spool.

Windows are of ingestion time (`@ingested_at`, stamped by the pipeline), aligned to the
trail's interval (`[k * interval, (k + 1) * interval)` since the epoch). A window is
delivered once it ended at least `settle` ago, so documents still in flight to search
(bulk batching, retries) are in by then. After a window's objects are written the
checkpoint (`search_delivery.ingested_until`) moves to the window's end, in the config
store. After downtime, the windows missed are delivered one after the other: the next
window always starts where the last one ended, so there is no gap, and since every event
has one ingestion time, no event is in two windows. A window interrupted halfway resumes
from its own export checkpoint (kept in the row), and its object names are derived from
the window, so re-writing one after a crash overwrites it.

Where a trail's first window starts: when the trail's source became `search` (read from
the change history); events ingested before were delivered from the spool.

Limit: an event that reaches search more than `settle` after stacktrail ingested it
(search down longer than that) lands in a window already delivered and is not archived
by this path; choose `settle` longer than the search outages the pipeline rides out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.archive.export import SEARCH_WORKER, Exporter, ExportSpec, TimeField
from stacktrail.archive.layout import InvalidName
from stacktrail.archive.stores.base import ObjectStore
from stacktrail.db import job_tables as jt
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.errors import ClientError, TransientError
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.domain.ledger import DeliveredObject, DeliveryError, DeliveryLedger
from stacktrail.domain.timeframe import Timeframe, epoch_ms, from_epoch_ms
from stacktrail.domain.trail import ArchiveSource, Trail
from stacktrail.search.client import SearchClient
from stacktrail.search.reader import EventReader, Naming, NoIndexError

log = logging.getLogger(__name__)

MAX_WINDOWS_PER_RUN = 1000  # per project and run; the next run goes on


@dataclass(frozen=True, slots=True)
class DeliveryState:
    project_id: str
    ingested_until: datetime
    windows: int
    events: int
    window: ExportCheckpoint | None
    last_run_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def _state(row: Any) -> DeliveryState:
    return DeliveryState(
        project_id=row.project_id,
        ingested_until=row.ingested_until,
        windows=row.windows,
        events=row.events,
        window=ExportCheckpoint.from_json(row.window) if row.window else None,
        last_run_at=row.last_run_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
    )


def window_end(start: datetime, interval: timedelta) -> datetime:
    """The end of the interval-aligned window that `start` falls in."""
    step = max(int(interval.total_seconds() * 1000), 1)
    return from_epoch_ms((epoch_ms(start) // step + 1) * step)


def is_search_sourced(trail: Trail) -> bool:
    return (
        trail.enabled
        and trail.search_enabled
        and trail.archive.enabled
        and trail.archive.source is ArchiveSource.SEARCH
    )


async def delivery_state(engine: AsyncEngine, project_id: str) -> DeliveryState | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(jt.search_delivery).where(jt.search_delivery.c.project_id == project_id)
            )
        ).first()
    return _state(row) if row is not None else None


class SearchDelivery:
    def __init__(
        self,
        store: TrailStore,
        client: SearchClient,
        objects: ObjectStore,
        *,
        template: Naming,
        settle: timedelta,
        ledger: DeliveryLedger | None = None,
        reader_factory: Callable[[], EventReader] | None = None,
        max_records: int = 100_000,
        max_bytes: int = 64 << 20,
    ) -> None:
        self._store = store
        self._engine = store.engine
        self._client = client
        self._objects = objects
        self._template = template
        self._settle = settle
        self._ledger = ledger
        self._reader_factory = reader_factory or (lambda: EventReader(client))
        self._max_records = max_records
        self._max_bytes = max_bytes

    async def trails(self) -> list[Trail]:
        """Every configured trail whose archive comes from search."""
        found: list[Trail] = []
        marker: str | None = None
        while True:
            page = await self._store.list_trails(limit=500, marker=marker)
            for stored in page.trails:
                trail = stored.trail()
                if is_search_sourced(trail):
                    found.append(trail)
            if page.next_marker is None:
                return found
            marker = page.next_marker

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Deliver every window that is due, for every search-sourced trail.

        Returns the number of windows delivered. One project's failure is recorded in
        its row and does not stop the others.
        """
        at = now or datetime.now(UTC)
        delivered = 0
        for trail in await self.trails():
            try:
                delivered += await self.deliver_project(trail, at)
            except (ClientError, InvalidName, ValueError) as exc:
                log.warning("search delivery of project %s: %s", trail.project_id, exc)
                await self._record_error(trail, str(exc), at)
            except Exception as exc:
                log.exception("search delivery of project %s failed", trail.project_id)
                await self._record_error(trail, f"{type(exc).__name__}: {exc}", at)
        return delivered

    async def _start_of(self, project_id: str, fallback: datetime) -> datetime:
        """When the trail's archive source last became `search`."""
        before: int | None = None
        while True:
            changes = await self._store.changes(project_id, limit=100, before=before)
            if not changes:
                return fallback
            for change in changes:  # newest first
                new_source = ((change.new or {}).get("archive") or {}).get("source")
                old_source = ((change.old or {}).get("archive") or {}).get("source")
                if new_source == ArchiveSource.SEARCH.value and old_source != new_source:
                    return change.changed_at
            before = changes[-1].id

    async def deliver_project(self, trail: Trail, now: datetime) -> int:
        project_id = trail.project_id
        horizon = now - self._settle
        state = await delivery_state(self._engine, project_id)
        if state is None:
            start = await self._start_of(project_id, horizon)
            state = await self._create(project_id, min(start, horizon), now)
        delivered = 0
        cursor = state.ingested_until
        window_cp = state.window
        while delivered < MAX_WINDOWS_PER_RUN:
            end = window_end(cursor, trail.archive.interval)
            if end > horizon:
                break
            spec = ExportSpec(
                project_id=project_id,
                frame=Timeframe(cursor, end),
                format=trail.archive.format,
                container=trail.archive.container,
                prefix=trail.archive.prefix,
                regions=trail.archive.regions,
                retention_days=trail.retention_days,
                write_mode=trail.archive.write_mode,
                worker=SEARCH_WORKER,
                time_field=TimeField.INGESTED,
            )
            checkpoint = window_cp if window_cp and window_cp.export_id == spec.export_id else None
            events = await self._deliver_window(spec, checkpoint)
            await self._advance(project_id, end, events, now)
            delivered += 1
            cursor = end
            window_cp = None
        return delivered

    async def _deliver_window(self, spec: ExportSpec, checkpoint: ExportCheckpoint | None) -> int:
        async def save(cp: ExportCheckpoint) -> None:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(jt.search_delivery)
                    .where(jt.search_delivery.c.project_id == spec.project_id)
                    .values(window=cp.to_json(), updated_at=datetime.now(UTC))
                )

        exporter = Exporter(
            self._client,
            self._objects,
            spec,
            template=self._template,
            checkpoint=checkpoint,
            save=save,
            reader=self._reader_factory(),
            max_records=self._max_records,
            max_bytes=self._max_bytes,
            on_written=self._to_ledger,
        )
        try:
            result = await exporter.run()
        except NoIndexError:
            return 0  # nothing was ever indexed for the project: an empty window
        return result.checkpoint.events

    async def _to_ledger(self, delivered: DeliveredObject) -> None:
        """Part of the delivery: a failure stops the window before its checkpoint, so the
        next round writes the object again and records it (the digests list only what
        the ledger holds)."""
        if self._ledger is None:
            return
        try:
            await self._ledger.record_delivery(delivered)
        except Exception as exc:
            raise TransientError(
                f"{delivered.key} is stored, but the delivery ledger did not record it "
                f"({type(exc).__name__}: {exc}); the window is delivered again"
            ) from exc

    async def _create(self, project_id: str, start: datetime, now: datetime) -> DeliveryState:
        async with self._engine.begin() as conn:
            await conn.execute(
                jt.search_delivery.insert().values(
                    project_id=project_id,
                    ingested_until=start,
                    windows=0,
                    events=0,
                    updated_at=now,
                )
            )
        state = await delivery_state(self._engine, project_id)
        assert state is not None
        return state

    async def _advance(self, project_id: str, end: datetime, events: int, now: datetime) -> None:
        c = jt.search_delivery.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(jt.search_delivery)
                .where(c.project_id == project_id)
                .values(
                    ingested_until=end,
                    windows=c.windows + 1,
                    events=c.events + events,
                    window=None,
                    last_run_at=now,
                    last_error=None,
                    last_error_at=None,
                    updated_at=datetime.now(UTC),
                )
            )

    async def _record_error(self, trail: Trail, message: str, now: datetime) -> None:
        c = jt.search_delivery.c
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    update(jt.search_delivery)
                    .where(c.project_id == trail.project_id)
                    .values(last_error=message[:2000], last_error_at=now, updated_at=now)
                )
            if self._ledger is not None:
                for region in trail.archive.regions:
                    await self._ledger.record_error(
                        DeliveryError(trail.project_id, region, message, now)
                    )
        except Exception:
            log.exception("search delivery: cannot record the error of %s", trail.project_id)
