"""Retention changes reach objects already archived: their `X-Delete-At` is brought to
the project's current retention, in the background.

Detection: the scheduler reads the trail change history (`trail_changes`) after the last
change it saw (kept in `scheduler_state`). A change of a project's effective retention
queues that project in `retention_updates`; a change of the default retention queues
every project that has deliveries in the ledger and no trail of its own. The first run
only notes where the history stands.

A sweep lists the project's objects (each region of its trail and each (region,
container) of its ledger, below `<prefix>/<project>/<region>/`), reads each object's
day from its key (`.../YYYY/MM/DD/<name>`), and when its `X-Delete-At` differs from
`delete_at(day, retention)`: sets the new expiry keeping the object's metadata and
content type (`ObjectStore.head` / `set_delete_at`), or deletes the object when the new
expiry has already passed (Swift refuses an `X-Delete-At` in the past). An object gone
meanwhile (or already expired: Swift answers 404 for it) is counted as seen and left
alone. Progress (objects seen, updated, deleted, the last key done) is saved in the row
as it goes, so the trail status can show it and a restarted scheduler goes on from the
last key.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.archive.layout import day_of_key, delete_at, normalise_prefix
from stacktrail.archive.stores.base import Bucket, NoSuchObject, ObjectStore
from stacktrail.db import job_tables as jt
from stacktrail.db import tables as t
from stacktrail.db.retention_updates import RetentionUpdate, row_to_update
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.errors import ClientError
from stacktrail.domain.trail import Trail

log = logging.getLogger(__name__)

SCAN_STATE = "retention_scan"
PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
SAVE_EVERY_OBJECTS = 200
SAVE_EVERY_S = 5.0
RETRY_AFTER = timedelta(minutes=5)


def _retention_in(document: dict[str, Any] | None, default: int, field: str) -> int:
    if not document:
        return default
    value = document.get(field)
    return int(value) if isinstance(value, int) else default


async def get_state(engine: AsyncEngine, name: str) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(jt.scheduler_state.c.value).where(jt.scheduler_state.c.name == name)
        )


async def set_state(engine: AsyncEngine, name: str, value: Any) -> None:
    insert = t.upsert(engine.dialect.name, jt.scheduler_state).values(
        name=name, value=value, updated_at=datetime.now(UTC)
    )
    insert = insert.on_conflict_do_update(
        index_elements=["name"],
        set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
    )
    async with engine.begin() as conn:
        await conn.execute(insert)


async def project_buckets(
    engine: AsyncEngine, project_id: str, trail: Trail
) -> list[tuple[Bucket, str]]:
    """(bucket, key prefix) pairs that may hold the project's objects, sorted: each region
    of its trail, and each (region, container) the delivery ledger knows."""
    prefix = normalise_prefix(trail.archive.prefix)
    found: dict[tuple[str, str, str], None] = {}
    for region in trail.archive.regions:
        found[(region, trail.archive.container, prefix)] = None
    d = t.deliveries.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(d.region, d.container, func.min(d.key))
                .where(d.project_id == project_id)
                .group_by(d.region, d.container)
            )
        ).all()
    for region, container, key in rows:
        marker = f"{project_id}/{region}/"
        head = key.split(marker, 1)[0].strip("/") if marker in key else prefix
        found[(region, container, head)] = None
    result = []
    for region, container, head in sorted(found):
        bucket = Bucket(project_id, region, container, trail.archive.write_mode)
        key_prefix = "/".join(p for p in (head, project_id, region) if p) + "/"
        result.append((bucket, key_prefix))
    return result


async def trail_of(store: TrailStore, project_id: str) -> Trail:
    """The project's effective trail (its own settings over the operator's defaults)."""
    return (await store.get_trail(project_id)).trail()


class ArchiveRetention:
    def __init__(self, store: TrailStore, objects: ObjectStore) -> None:
        self._store = store
        self._engine = store.engine
        self._objects = objects

    async def _trail(self, project_id: str) -> Trail:
        return await trail_of(self._store, project_id)

    # --- detection

    async def detect_changes(self, now: datetime | None = None) -> list[str]:
        """Queue projects whose retention changed since the last call; returns them."""
        at = now or datetime.now(UTC)
        c = t.trail_changes.c
        seen = await get_state(self._engine, SCAN_STATE)
        if seen is None:
            async with self._engine.connect() as conn:
                last = await conn.scalar(select(func.max(c.id)))
            await set_state(self._engine, SCAN_STATE, {"last_change_id": int(last or 0)})
            return []
        last_id = int(seen.get("last_change_id", 0))
        defaults = await self._store.get_defaults()
        queued: dict[str, None] = {}
        while True:
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(t.trail_changes).where(c.id > last_id).order_by(c.id).limit(500)
                    )
                ).all()
            if not rows:
                break
            for row in rows:
                last_id = row.id
                if row.project_id is None:
                    old = _retention_in(row.old, -1, "default_retention_days")
                    new = _retention_in(row.new, -1, "default_retention_days")
                    old_max = _retention_in(row.old, -1, "max_retention_days")
                    new_max = _retention_in(row.new, -1, "max_retention_days")
                    if old != new or old_max != new_max:
                        for project_id in await self._projects_on_defaults(
                            old != new, min(old_max, new_max) if old_max != new_max else None
                        ):
                            queued[project_id] = None
                    continue
                fallback = defaults.default_retention_days
                old = _retention_in(row.old, fallback, "retention_days")
                new = _retention_in(row.new, fallback, "retention_days")
                if old != new:
                    queued[row.project_id] = None
        for project_id in queued:
            trail = await self._trail(project_id)
            await self.enqueue(project_id, trail.retention_days, at)
        await set_state(self._engine, SCAN_STATE, {"last_change_id": last_id})
        return list(queued)

    async def _projects_on_defaults(
        self, default_changed: bool = True, clamped_above: int | None = None
    ) -> list[str]:
        """Projects with archived objects whose retention a change of the defaults moves:
        those that do not override it (when the default changed), and those whose override
        is above `clamped_above` (a changed maximum clamps it)."""
        d = t.deliveries.c
        async with self._engine.connect() as conn:
            with_objects = (await conn.execute(select(d.project_id).distinct())).scalars().all()
            stored = {
                row.project_id: row.config
                for row in await conn.execute(
                    select(t.trails.c.project_id, t.trails.c.config).where(
                        t.trails.c.config.is_not(None)
                    )
                )
            }
        moved = []
        for project_id in with_objects:
            config = stored.get(project_id)
            own = config.get("retention_days") if isinstance(config, dict) else None
            if not isinstance(own, int):
                if default_changed:
                    moved.append(project_id)
            elif clamped_above is not None and own > clamped_above:
                moved.append(project_id)
        return sorted(moved)

    async def enqueue(self, project_id: str, retention_days: int, now: datetime) -> None:
        """(Re)start the update of a project's objects to `retention_days`."""
        values = {
            "retention_days": retention_days,
            "status": PENDING,
            "objects_seen": 0,
            "objects_updated": 0,
            "objects_deleted": 0,
            "cursor": None,
            "error": None,
            "requested_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }
        insert = t.upsert(self._engine.dialect.name, jt.retention_updates).values(
            project_id=project_id, **values
        )
        insert = insert.on_conflict_do_update(
            index_elements=["project_id"],
            set_={name: getattr(insert.excluded, name) for name in values},
        )
        async with self._engine.begin() as conn:
            await conn.execute(insert)

    # --- sweeping

    async def pending(self) -> list[RetentionUpdate]:
        c = jt.retention_updates.c
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(jt.retention_updates)
                    .where(c.status.in_((PENDING, RUNNING)))
                    .order_by(c.requested_at)
                )
            ).all()
        return [row_to_update(row) for row in rows]

    async def run_pending(self, now: datetime | None = None) -> int:
        """Sweep every queued project; returns how many sweeps finished. A sweep that
        failed is tried again `RETRY_AFTER` after its failure."""
        at = now or datetime.now(UTC)
        finished = 0
        for item in await self.pending():
            if item.error is not None and item.updated_at + RETRY_AFTER > at:
                continue
            if await self.sweep(item.project_id, now):
                finished += 1
        return finished

    async def sweep(self, project_id: str, now: datetime | None = None) -> bool:
        """Bring one project's objects to its retention; False when it failed (retried)."""
        c = jt.retention_updates.c
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(jt.retention_updates).where(c.project_id == project_id))
            ).first()
        if row is None or row.status not in (PENDING, RUNNING):
            return False
        trail = await self._trail(project_id)
        retention = trail.retention_days
        counts = {
            "objects_seen": row.objects_seen,
            "objects_updated": row.objects_updated,
            "objects_deleted": row.objects_deleted,
        }
        cursor: str | None = row.cursor
        started = row.started_at or datetime.now(UTC)
        await self._save(
            project_id, RUNNING, counts, cursor, started_at=started, retention=retention
        )
        last_save = time.monotonic()
        try:
            for bucket, key_prefix in await project_buckets(self._engine, project_id, trail):
                position = f"{bucket.region}|{bucket.container}|"
                keys = await self._objects.list_keys(bucket, key_prefix)
                for key in keys:
                    here = position + key
                    if cursor is not None and here <= cursor:
                        continue
                    day = day_of_key(key)
                    if day is not None:
                        outcome = await self._apply(bucket, key, delete_at(day, retention), now)
                        counts["objects_seen"] += 1
                        if outcome:
                            counts[outcome] += 1
                    cursor = here
                    if (
                        counts["objects_seen"] % SAVE_EVERY_OBJECTS == 0
                        or time.monotonic() - last_save >= SAVE_EVERY_S
                    ):
                        await self._save(project_id, RUNNING, counts, cursor)
                        last_save = time.monotonic()
        except ClientError as exc:
            log.warning("retention update of project %s: %s (will go on later)", project_id, exc)
            await self._save(project_id, RUNNING, counts, cursor, error=str(exc)[:2000])
            return False
        await self._save(project_id, DONE, counts, cursor, finished=True)
        log.info(
            "retention update of project %s to %d days: %d objects, %d updated, %d deleted",
            project_id,
            retention,
            counts["objects_seen"],
            counts["objects_updated"],
            counts["objects_deleted"],
        )
        return True

    async def _apply(self, bucket: Bucket, key: str, wanted: int, now: datetime | None) -> str:
        """Bring one object to `wanted`; the counter to raise ("" when nothing changed)."""
        try:
            info = await self._objects.head(bucket, key)
            if info.delete_at == wanted:
                return ""
            moment = (now or datetime.now(UTC)).timestamp()
            if wanted <= moment:
                await self._objects.delete(bucket, key)
                return "objects_deleted"
            await self._objects.set_delete_at(
                bucket, key, wanted, info.metadata, content_type=info.content_type
            )
        except NoSuchObject:
            return ""  # gone meanwhile
        return "objects_updated"

    async def _save(
        self,
        project_id: str,
        status: str,
        counts: dict[str, int],
        cursor: str | None,
        *,
        error: str | None = None,
        started_at: datetime | None = None,
        finished: bool = False,
        retention: int | None = None,
    ) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "status": status,
            "cursor": cursor,
            "error": error,
            "updated_at": now,
            **counts,
        }
        if started_at is not None:
            values["started_at"] = started_at
        if retention is not None:
            values["retention_days"] = retention
        if finished:
            values["finished_at"] = now
        c = jt.retention_updates.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(jt.retention_updates).where(c.project_id == project_id).values(**values)
            )
