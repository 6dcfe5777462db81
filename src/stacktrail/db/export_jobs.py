"""Export jobs asked for through the API, as stored in the config store (run by the leader:
`archive/export_jobs.py`).

A job is created `queued` with everything it needs (frame, format, and the trail's
container, prefix, regions, write mode and retention at the time of the request), so it
runs the same however the trail changes later. The scheduler's leader takes the oldest
unfinished job, runs it with its checkpoint saved in the row after every object, and
marks it `done` or `failed`. A job found `running` after a restart is resumed from its
checkpoint. Transient failures (search or store unreachable) are retried with backoff;
permanent ones (no index for the project, a refused container) fail the job.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.db import job_tables as jt
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.domain.timeframe import Timeframe
from stacktrail.domain.trail import ArchiveFormat, Trail, WriteMode

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
UNFINISHED = (QUEUED, RUNNING)
MAX_ATTEMPTS = 8
MAX_ERROR_LENGTH = 2000


class ExportConflict(Exception):
    """The project already has an unfinished export."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"export {job_id} of this project is not finished yet")
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class ExportJob:
    id: str
    project_id: str
    status: str
    format: ArchiveFormat
    frame: Timeframe
    container: str
    prefix: str
    regions: tuple[str, ...]
    write_mode: WriteMode
    retention_days: int
    requested_by_id: str
    requested_by_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    events_total: int | None
    events_done: int
    bytes_done: int
    files_done: int
    attempts: int
    checkpoint: ExportCheckpoint | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status in (DONE, FAILED)

    @property
    def files(self) -> list[str]:
        return list(self.checkpoint.files) if self.checkpoint else []

    @property
    def day_counts(self) -> dict[str, int]:
        return dict(self.checkpoint.day_counts) if self.checkpoint else {}


def _job(row: Row[Any]) -> ExportJob:
    return ExportJob(
        id=row.id,
        project_id=row.project_id,
        status=row.status,
        format=ArchiveFormat(row.format),
        frame=Timeframe(row.time_from, row.time_to),
        container=row.container,
        prefix=row.prefix,
        regions=tuple(row.regions),
        write_mode=WriteMode(row.write_mode),
        retention_days=row.retention_days,
        requested_by_id=row.requested_by_id,
        requested_by_name=row.requested_by_name,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
        events_total=row.events_total,
        events_done=row.events_done,
        bytes_done=row.bytes_done,
        files_done=row.files_done,
        attempts=row.attempts,
        checkpoint=ExportCheckpoint.from_json(row.checkpoint) if row.checkpoint else None,
        error=row.error,
    )


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(15 * 2 ** max(attempts - 1, 0), 900))


class ExportJobs:
    """The `export_jobs` table."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        trail: Trail,
        frame: Timeframe,
        fmt: ArchiveFormat,
        *,
        user_id: str,
        user_name: str,
        now: datetime | None = None,
    ) -> ExportJob:
        """Queue an export into the trail's container; ExportConflict if one is unfinished."""
        at = now or datetime.now(UTC)
        job_id = str(uuid.uuid4())
        c = jt.export_jobs.c
        async with self._engine.begin() as conn:
            busy = await conn.scalar(
                select(c.id)
                .where(c.project_id == trail.project_id, c.status.in_(UNFINISHED))
                .limit(1)
            )
            if busy is not None:
                raise ExportConflict(str(busy))
            await conn.execute(
                jt.export_jobs.insert().values(
                    id=job_id,
                    project_id=trail.project_id,
                    status=QUEUED,
                    format=fmt.value,
                    time_from=frame.start,
                    time_to=frame.end,
                    container=trail.archive.container,
                    prefix=trail.archive.prefix,
                    regions=list(trail.archive.regions),
                    write_mode=trail.archive.write_mode.value,
                    retention_days=trail.retention_days,
                    requested_by_id=user_id,
                    requested_by_name=user_name,
                    created_at=at,
                    updated_at=at,
                    events_done=0,
                    bytes_done=0,
                    files_done=0,
                    attempts=0,
                )
            )
        job = await self.get(job_id)
        assert job is not None
        return job

    async def get(self, job_id: str) -> ExportJob | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(select(jt.export_jobs).where(jt.export_jobs.c.id == job_id))
            ).first()
        return _job(row) if row is not None else None

    async def list_project(self, project_id: str, limit: int = 50) -> list[ExportJob]:
        c = jt.export_jobs.c
        query = (
            select(jt.export_jobs)
            .where(c.project_id == project_id)
            .order_by(c.created_at.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_job(row) for row in rows]

    async def next_due(self, now: datetime) -> ExportJob | None:
        """The oldest unfinished job whose retry delay is over."""
        c = jt.export_jobs.c
        query = (
            select(jt.export_jobs)
            .where(c.status.in_(UNFINISHED))
            .order_by(c.created_at, c.id)
            .limit(100)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for row in rows:
            job = _job(row)
            if job.error is None or job.updated_at + retry_delay(job.attempts) <= now:
                return job
        return None

    async def start(self, job: ExportJob, now: datetime) -> None:
        c = jt.export_jobs.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(jt.export_jobs)
                .where(c.id == job.id)
                .values(
                    status=RUNNING,
                    started_at=job.started_at or now,
                    attempts=c.attempts + 1,
                    updated_at=now,
                )
            )

    async def save(self, job_id: str, cp: ExportCheckpoint) -> None:
        c = jt.export_jobs.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(jt.export_jobs)
                .where(and_(c.id == job_id, or_(c.status == RUNNING, c.status == QUEUED)))
                .values(
                    checkpoint=cp.to_json(),
                    events_total=cp.total,
                    events_done=cp.events,
                    bytes_done=cp.bytes,
                    files_done=len(cp.files),
                    updated_at=datetime.now(UTC),
                )
            )

    async def finish(
        self, job_id: str, status: str, error: str | None = None, now: datetime | None = None
    ) -> None:
        at = now or datetime.now(UTC)
        values: dict[str, Any] = {"status": status, "updated_at": at}
        if status in (DONE, FAILED):
            values["finished_at"] = at
        values["error"] = error[:MAX_ERROR_LENGTH] if error else None
        async with self._engine.begin() as conn:
            await conn.execute(
                update(jt.export_jobs).where(jt.export_jobs.c.id == job_id).values(**values)
            )
