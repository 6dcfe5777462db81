"""Retention updates of archived objects (`retention_updates`), as the status pages read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.db import job_tables as jt


@dataclass(frozen=True, slots=True)
class RetentionUpdate:
    """A project's retention update, for status pages."""

    project_id: str
    retention_days: int
    status: str
    objects_seen: int
    objects_updated: int
    objects_deleted: int
    error: str | None
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


def row_to_update(row: Any) -> RetentionUpdate:
    return RetentionUpdate(
        project_id=row.project_id,
        retention_days=row.retention_days,
        status=row.status,
        objects_seen=row.objects_seen,
        objects_updated=row.objects_updated,
        objects_deleted=row.objects_deleted,
        error=row.error,
        requested_at=row.requested_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


async def retention_update_status(engine: AsyncEngine, project_id: str) -> RetentionUpdate | None:
    """The latest retention update of a project (None if there never was one)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(jt.retention_updates).where(jt.retention_updates.c.project_id == project_id)
            )
        ).first()
    return row_to_update(row) if row is not None else None
