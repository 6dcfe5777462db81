"""Deliveries as the uploader makes them (object + ledger row), for the digest tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.layout import build_body, object_headers, object_key, spec_delete_at
from stacktrail.archive.spool import SegmentSpec
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.document import default_spec
from stacktrail.domain.ledger import DeliveredObject
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.signing import SigningKey, generate_key_files
from tests.support.corpus import make_event

ACTOR = Actor(user_id="u1", user_name="tester", project_id=None)
REGION = "RegionOne"


async def configure_trail(
    store: TrailStore, project: str, container: str, fmt: ArchiveFormat = ArchiveFormat.NDJSON
) -> None:
    base = default_spec(await store.get_defaults(), store.settings)
    archive = base.archive.model_copy(
        update={"regions": [REGION], "container": container, "format": fmt}
    )
    await store.put_trail(project, base.model_copy(update={"archive": archive}), ACTOR)


def new_key(directory: Path) -> SigningKey:
    return generate_key_files(directory / f"digest-{uuid.uuid4().hex[:6]}.key")


@dataclass
class Deliverer:
    """Writes objects like the uploader and records them in the ledger, at chosen times."""

    objects: ObjectStore
    ledger: SqlLedger
    container: str
    write_mode: WriteMode = WriteMode.RESELLER
    published: dict[str, list[str]] = field(default_factory=dict)  # project -> event ids
    keys: dict[str, list[str]] = field(default_factory=dict)  # project -> object keys
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def deliver(
        self,
        project: str,
        delivered_at: datetime,
        event_times: list[datetime],
        fmt: ArchiveFormat = ArchiveFormat.NDJSON,
        repeat: list[dict[str, Any]] | None = None,
    ) -> str:
        """One object of events at `event_times` (their day: the first one's)."""
        day = event_times[0].date().isoformat()
        spec = SegmentSpec(
            project_id=project,
            day=day,
            container=self.container,
            prefix="",
            format=fmt,
            regions=(REGION,),
            write_mode=self.write_mode,
            retention_days=90,
            interval=60.0,
        )
        events = [make_event(project, when) for when in event_times]
        events += repeat or []  # at-least-once: earlier events delivered again
        body = build_body(spec, [orjson.dumps(e) for e in events])
        stamp = delivered_at.strftime("%Y%m%dT%H%MZ")
        key = object_key(spec, REGION, stamp, "worker", uuid.uuid4().hex[:8])
        bucket = Bucket(project, REGION, self.container, self.write_mode)
        await self.objects.ensure_container(bucket)
        await self.objects.put(bucket, key, body.data, object_headers(body, spec_delete_at(spec)))
        await self.ledger.record_delivery(
            DeliveredObject(
                project_id=project,
                region=REGION,
                container=self.container,
                key=key,
                day=day,
                records=body.records,
                bytes=len(body.data),
                sha256=body.sha256,
                delivered_at=delivered_at,
                object_sha256=body.object_sha256,
                first_event_time=body.first_event_time,
                last_event_time=body.last_event_time,
            )
        )
        self.events.setdefault(project, []).extend(events)
        ids = self.published.setdefault(project, [])
        ids.extend(e["id"] for e in events if e["id"] not in ids)
        self.keys.setdefault(project, []).append(key)
        return key


def day_start(days_ago: int = 1) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


async def a_day(
    deliverer: Deliverer,
    writer: DigestWriter,
    projects: list[str],
    start: datetime,
    *,
    quiet_hours: frozenset[int] = frozenset({3, 4}),
) -> None:
    """24 hours of deliveries (none in `quiet_hours`), then every digest of the day."""
    await writer.run_due(start)  # the chains start at `start`
    for hour in range(24):
        if hour in quiet_hours:
            continue
        at = start + timedelta(hours=hour, minutes=20)
        for project in projects:
            await deliverer.deliver(
                project, at, [at - timedelta(minutes=5), at - timedelta(minutes=1)]
            )
    # a late object: events of the day before, delivered in hour 10
    late = start + timedelta(hours=10, minutes=40)
    for project in projects:
        await deliverer.deliver(project, late, [start - timedelta(hours=5)])
    await writer.run_due(start + timedelta(days=1, minutes=1))
