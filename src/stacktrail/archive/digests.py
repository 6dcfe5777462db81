"""Signed, hash-linked archive digests: one per project, region and period.

Every `STACKTRAIL_DIGEST_INTERVAL` (aligned to the UTC epoch: hours start on the hour)
the scheduler's leader writes, for each project whose archive is on and each of its
regions, a digest of the objects the delivery ledger recorded as delivered in that
period, into the trail's container beside the data (format: `stacktrail_reader.digest`).
A period without deliveries gets a digest with an empty list, so a gap shows. Late
events are listed by the digest of the period they were delivered in, wherever their day
folder is. Search-sourced deliveries go through the same ledger and so the same chain;
export jobs asked for through the API write into the data tree too and are listed as
well (their objects are recorded as they are written).

The chain head per (project, region) is kept in `scheduler_state` (db/digest_chain.py),
so another leader continues it and the status pages say when the last digest was
delivered. A period is digested
`SETTLE` after its end, so deliveries confirmed just before the end are in the ledger.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import select

from stacktrail.archive.layout import delete_at, normalise_prefix
from stacktrail.archive.retention import set_state
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.db import tables as t
from stacktrail.db.digest_chain import ChainHead, chain_head, state_name
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.trail import Trail
from stacktrail.signing import SigningKey
from stacktrail_reader import digest as d

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=30)
MAX_PERIODS_PER_RUN = 500  # per (project, region); a long outage catches up over runs
CONTENT_TYPE = "application/json"


def period_start(moment: datetime, interval: timedelta) -> datetime:
    """The start of the period `moment` falls in (periods aligned to the epoch)."""
    step = int(interval.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, UTC)


def build_digest(
    key: SigningKey,
    project_id: str,
    region: str,
    start: datetime,
    end: datetime,
    objects: list[d.DigestEntry],
    head: ChainHead,
) -> bytes:
    document: dict[str, Any] = {
        "version": d.VERSION,
        "project_id": project_id,
        "region": region,
        "period_start": d.iso(start),
        "period_end": d.iso(end),
        "objects": [o.to_json() for o in objects],
        "previous_digest": (
            {"key": head.key, "sha256": head.sha256, "signature": head.signature}
            if head.key
            else None
        ),
        "key_fingerprint": key.fingerprint,
    }
    document["signature"] = key.sign(document)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


class DigestWriter:
    def __init__(
        self,
        store: TrailStore,
        objects: ObjectStore,
        key: SigningKey,
        *,
        interval: timedelta,
        default_regions: tuple[str, ...] = (),
    ) -> None:
        self._store = store
        self._objects = objects
        self._key = key
        self._interval = interval
        self._default_regions = default_regions
        self._published: set[tuple[str, ...]] = set()  # (project, region, container, prefix, fp)

    async def run_due(self, now: datetime) -> int:
        """Write every digest whose period ended `SETTLE` ago; returns how many."""
        written = 0
        marker: str | None = None
        while True:
            page = await self._store.list_trails(limit=500, marker=marker)
            for stored in page.trails:
                trail = stored.effective.to_trail(stored.project_id, stored.version)
                if not (trail.enabled and trail.archive.enabled):
                    continue
                for region in trail.archive.regions or self._default_regions:
                    try:
                        written += await self._run_chain(trail, region, now)
                    except Exception:
                        log.exception(
                            "digests: project %s region %s failed; tried again next run",
                            trail.project_id,
                            region,
                        )
            if page.next_marker is None:
                return written
            marker = page.next_marker

    async def _run_chain(self, trail: Trail, region: str, now: datetime) -> int:
        engine = self._store.engine
        project = trail.project_id
        head = await chain_head(engine, project, region)
        if head is None:  # the chain starts with the current period
            head = ChainHead(period_start(now, self._interval), None, None, None)
            await set_state(engine, state_name(project, region), head.to_json())
            return 0
        prefix = normalise_prefix(trail.archive.prefix)
        bucket = Bucket(project, region, trail.archive.container, trail.archive.write_mode)
        count = 0
        while count < MAX_PERIODS_PER_RUN and head.end + self._interval + SETTLE <= now:
            start, end = head.end, head.end + self._interval
            if count == 0:
                await self._publish_key(bucket, prefix)
            entries = await self._entries(trail, bucket, start, end)
            body = build_digest(self._key, project, region, start, end, entries, head)
            key = d.digest_key(project, region, start, prefix)
            headers = {
                "Content-Type": CONTENT_TYPE,
                "X-Delete-At": str(delete_at(end.date().isoformat(), trail.retention_days)),
            }
            await self._objects.put(bucket, key, body, headers)
            signature = str(orjson.loads(body)["signature"])
            head = ChainHead(
                end,
                key,
                d.sha256_hex(body),
                signature,
                start=start,
                fingerprint=self._key.fingerprint,
                delivered_at=datetime.now(UTC),
            )
            await set_state(engine, state_name(project, region), head.to_json())
            count += 1
        return count

    async def _publish_key(self, bucket: Bucket, prefix: str) -> None:
        """The public key, once per container (kept: validating old digests needs it)."""
        # Swift containers live in each project's account: the same name is another one
        marker = (bucket.project_id, bucket.region, bucket.container, prefix, self._key.fingerprint)
        if marker in self._published:
            return
        key = d.public_key_key(self._key.fingerprint, prefix)
        await self._objects.ensure_container(bucket)
        await self._objects.put(
            bucket, key, self._key.public_pem, {"Content-Type": "application/x-pem-file"}
        )
        self._published.add(marker)

    async def _entries(
        self, trail: Trail, bucket: Bucket, start: datetime, end: datetime
    ) -> list[d.DigestEntry]:
        c = t.deliveries.c
        query = (
            select(t.deliveries)
            .where(
                c.project_id == trail.project_id,
                c.region == bucket.region,
                c.container == bucket.container,
                c.delivered_at >= start,
                c.delivered_at < end,
            )
            .order_by(c.key)
        )
        async with self._store.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            d.DigestEntry(
                key=row.key,
                size=row.bytes,
                sha256=row.object_sha256,
                records=row.records,
                first_event_time=row.first_event_time,
                last_event_time=row.last_event_time,
                delete_at=delete_at(row.day, trail.retention_days),
            )
            for row in rows
        ]
