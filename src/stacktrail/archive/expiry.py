"""Expiry of archived objects in stores that do not delete them by themselves.

Swift's expirer deletes an object at its `X-Delete-At`. S3 has no per-object expiry and
a local directory none at all, so for those the scheduler sweeps: for every project
with a trail or with objects in the delivery ledger, it lists the keys where the
project's objects live (jobs/archive_retention.project_buckets). A key whose day (read
from the key) is past the project's current retention is a candidate; it is deleted
when the object's own expiry (`delete-at` metadata, which an export may set later than
the day's) has passed as well. Objects still within retention are never read, so a
sweep costs one listing per (project, region, container) and a HEAD per candidate.

Failures are per project: one project's unreachable bucket is logged and tried again
at the next sweep, and the others are swept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from stacktrail.archive.layout import day_of_key, delete_at
from stacktrail.archive.retention import project_buckets, trail_of
from stacktrail.archive.stores.base import NoSuchObject, ObjectStore
from stacktrail.db import tables as t
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.errors import ClientError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ExpirySummary:
    projects: int
    candidates: int  # keys whose day is past retention
    deleted: int  # in a dry run: would be deleted
    failed_projects: tuple[str, ...]


class ArchiveExpiry:
    def __init__(self, store: TrailStore, objects: ObjectStore) -> None:
        self._store = store
        self._objects = objects

    async def projects(self) -> list[str]:
        """Projects that have, or may have, archived objects."""
        async with self._store.engine.connect() as conn:
            delivered = (await conn.execute(select(t.deliveries.c.project_id).distinct())).scalars()
            configured = (await conn.execute(select(t.trails.c.project_id))).scalars()
            return sorted({*delivered, *configured})

    async def sweep(
        self,
        now: datetime | None = None,
        *,
        dry_run: bool = False,
        only: set[str] | None = None,
    ) -> ExpirySummary:
        """Delete every object past its expiry (`dry_run`: count them); one pass over all
        projects, or the `only` ones."""
        moment = (now or datetime.now(UTC)).timestamp()
        projects = [p for p in await self.projects() if only is None or p in only]
        candidates = deleted = 0
        failed: list[str] = []
        for project_id in projects:
            try:
                found, gone = await self._sweep_project(project_id, moment, dry_run)
            except ClientError as exc:
                log.warning("expiry of project %s: %s (tried again later)", project_id, exc)
                failed.append(project_id)
                continue
            candidates += found
            deleted += gone
        if (deleted or failed) and not dry_run:
            log.info(
                "archive expiry: %d objects past retention deleted in %d projects%s",
                deleted,
                len(projects),
                f"; {len(failed)} projects failed" if failed else "",
            )
        return ExpirySummary(len(projects), candidates, deleted, tuple(failed))

    async def _sweep_project(
        self, project_id: str, moment: float, dry_run: bool
    ) -> tuple[int, int]:
        trail = await trail_of(self._store, project_id)
        candidates = deleted = 0
        for bucket, key_prefix in await project_buckets(self._store.engine, project_id, trail):
            for key in await self._objects.list_keys(bucket, key_prefix):
                day = day_of_key(key)
                if day is None or delete_at(day, trail.retention_days) > moment:
                    continue
                candidates += 1
                try:
                    info = await self._objects.head(bucket, key)
                except NoSuchObject:
                    continue  # gone meanwhile
                if info.delete_at is not None and info.delete_at > moment:
                    continue  # the object asks to be kept longer
                if not dry_run:
                    await self._objects.delete(bucket, key)
                deleted += 1
        return candidates, deleted
