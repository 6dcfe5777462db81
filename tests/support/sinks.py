"""Fixtures for the archive sink: records of real decoded events, trails, outcome tracking.

The object-store fixtures (dev-stack Keystone, Swift, s3api, project admins, an identity
without the reseller role) come from `tests/clients/conftest.py`.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from stacktrail.archive.sink import ArchiveSink
from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome, Record, Ticket
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import ArchiveConfig, ArchiveFormat, ArchiveSource, Trail, WriteMode
from stacktrail.ingest.decode import decode_message
from tests.support.cadf_factory import make_cadf, wrap_v1
from tests.support.polling import eventually
from tests.support.stores import (  # fixtures shared with the adapter tests
    REGION,
    acl_identity,
    admin_a,
    admin_b,
    keystone,
    s3_store,
    service_settings,
    swift_store,
    unique,
)

__all__ = [
    "REGION",
    "acl_identity",
    "admin_a",
    "admin_b",
    "keystone",
    "s3_store",
    "service_settings",
    "swift_store",
    "unique",
]

# Five minutes before the last UTC midnight: events spread over the two days around it
# (recent, so that retention leaves them an X-Delete-At in the future).
BEFORE_MIDNIGHT = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
    minutes=5
)
DAYS = (
    BEFORE_MIDNIGHT.strftime("%Y-%m-%d"),
    (BEFORE_MIDNIGHT + timedelta(days=1)).strftime("%Y-%m-%d"),
)


def make_event(project: str, when: datetime, n: int = 0) -> AuditEvent:
    """A real CADF event through the real decoder/normaliser (what the sink receives)."""
    cadf = make_cadf(
        event_id=str(uuid.uuid4()),
        event_time=when,
        initiator_project=project,
        action=f"update/{n}",
    )
    return decode_message(orjson.dumps(wrap_v1(cadf)))


def make_trail(
    project: str,
    container: str,
    *,
    prefix: str = "",
    fmt: ArchiveFormat = ArchiveFormat.JSON,
    interval: timedelta = timedelta(hours=1),
    regions: tuple[str, ...] = (REGION,),
    write_mode: WriteMode = WriteMode.RESELLER,
    retention_days: int = 30,
    enabled: bool = True,
    archive_enabled: bool = True,
    source: ArchiveSource = ArchiveSource.INGEST,
) -> Trail:
    return Trail(
        project_id=project,
        enabled=enabled,
        retention_days=retention_days,
        archive=ArchiveConfig(
            enabled=archive_enabled,
            container=container,
            prefix=prefix,
            format=fmt,
            interval=interval,
            regions=regions,
            write_mode=write_mode,
            source=source,
        ),
    )


class Keeps:
    """A sink that delivers every record at once, noting its project."""

    name = "keeps"

    def __init__(self) -> None:
        self.projects: list[str] = []

    def wants(self, record: Record) -> bool:
        return True

    async def start(self) -> None:
        pass

    async def put(self, record: Record) -> None:
        self.projects.append(record.project_id)
        record.resolve(Outcome.DELIVERED)

    async def stop(self, grace: float) -> None:
        pass


class Acks:
    """Stands in for the source: one ticket per record, outcomes collected."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.reasons: dict[str, str] = {}
        self._changed = asyncio.Event()

    def _done(self, ticket: Ticket) -> None:
        tag = str(ticket.tag)
        self.outcomes[tag] = ticket.outcome
        self.reasons[tag] = ticket.reason
        self._changed.set()

    def record(self, trail: Trail, event: AuditEvent) -> Record:
        ticket = Ticket(event.id, self._done)
        ticket.add()
        ticket.seal()
        return Record(
            project_id=trail.project_id,
            event=event,
            trail=trail,
            ingested_at=datetime.now(UTC),
            ticket=ticket,
        )

    async def wait(self, count: int, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while len(self.outcomes) < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(deadline - time.monotonic(), 0.01))


def sink_settings(tmp_path: Path, base: Settings | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = base.model_dump() if base is not None else {}
    values.update(
        spool_dir=tmp_path / "spool",
        archive_dir=tmp_path / "archive",
        archive_worker="test-worker",
        archive_retry_max=timedelta(seconds=1),
    )
    values.update(overrides)
    return Settings(**values)


def unpack(body: bytes, fmt: ArchiveFormat) -> list[dict[str, Any]]:
    """The events of an archive object (JSON or NDJSON)."""
    raw = gzip.decompress(body)
    if fmt is ArchiveFormat.JSON:
        records: list[dict[str, Any]] = orjson.loads(raw)["Records"]
        return records
    return [orjson.loads(line) for line in raw.splitlines()]


def by_id(events: list[AuditEvent]) -> dict[str, dict[str, Any]]:
    return {e.id: e.body for e in events}


async def still_waiting(sink: ArchiveSink, put: asyncio.Task[None]) -> bool:
    """Whether a put waits for room even after the writes in progress ended (a slow
    fsync alone must not count as back-pressure)."""
    done, _ = await asyncio.wait([put], timeout=0.5)
    if done:
        return False
    await eventually(lambda: sink.queued_bytes == 0)
    await asyncio.sleep(0.1)
    return not put.done()
