"""Export a project's events from search into the archive layout, resumably.

Events are read in the export order (`reader.py`), cut into objects by UTC event day
(and at most `max_records` / `max_bytes` per object), rendered and named by
`sinks/archive_object.py` exactly as the archive sink does:

    <prefix>/<project>/<region>/YYYY/MM/DD/<project>_<region>_<stamp>_<worker>_<segment>.<ext>

For an export, `<stamp>` is the end of the exported frame (YYYYMMDDTHHMMZ), `<worker>`
says where the object came from (`export` for exports asked for by a person,
`search` for the scheduler's search-sourced deliveries) and `<segment>` is
`<export id>-<part>`: the export id is a digest of project, frame, format and source, and
parts are numbered per day. The same export run again therefore writes the same names,
and, over unchanged data, the same bytes.

After every object the checkpoint (the sort values of its last event, the parts written
per day, counters) is saved; a resumed export continues after those sort values, so no
event is written twice, and an object written just before a crash is overwritten with
the same content.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from stacktrail.archive.layout import (
    build_body,
    check_container,
    check_project_id,
    check_region,
    delete_at,
    normalise_prefix,
    object_headers,
    object_key,
)
from stacktrail.archive.spool.segment import STAMP_FORMAT, SegmentSpec
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.domain.errors import ClientError, TransientError
from stacktrail.domain.export import ExportCheckpoint
from stacktrail.domain.ledger import DeliveredObject
from stacktrail.domain.timeframe import Timeframe, from_epoch_ms, iso
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.search.client import SearchClient
from stacktrail.search.reader import (
    EventReader,
    Hit,
    Naming,
    NoIndexError,
    ProjectIndex,
    event_time_query,
    index_target,
    ingested_query,
    project_indices,
    project_pattern,
)

log = logging.getLogger(__name__)

EXPORT_WORKER = "export"
SEARCH_WORKER = "search"
MIN_REMAINING_LIFE_S = 3600  # an exported object never expires sooner than this
DEFAULT_MAX_RECORDS = 100_000
DEFAULT_MAX_BYTES = 64 << 20
PUT_ATTEMPTS = 5


class TimeField:
    EVENT = "eventTime"  # exports by time frame
    INGESTED = "ingested"  # the scheduler's windows of ingestion time


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export and where its objects go."""

    project_id: str
    frame: Timeframe
    format: ArchiveFormat
    container: str
    prefix: str
    regions: tuple[str, ...]
    retention_days: int
    write_mode: WriteMode = WriteMode.RESELLER
    worker: str = EXPORT_WORKER
    time_field: str = TimeField.EVENT

    def __post_init__(self) -> None:
        check_project_id(self.project_id)
        check_container(self.container)
        normalise_prefix(self.prefix)
        if not self.regions:
            raise ValueError("an export needs at least one region")
        for region in self.regions:
            check_region(region)

    @property
    def export_id(self) -> str:
        """Stable for the same project, frame, format and source: names repeat on re-runs."""
        text = "|".join(
            (
                self.project_id,
                iso(self.frame.start),
                iso(self.frame.end),
                self.format.value,
                self.time_field,
                self.worker,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def stamp(self) -> str:
        return self.frame.end.strftime(STAMP_FORMAT)

    def segment_spec(self, day: str) -> SegmentSpec:
        return SegmentSpec(
            project_id=self.project_id,
            day=day,
            container=self.container,
            prefix=self.prefix,
            format=self.format,
            regions=self.regions,
            write_mode=self.write_mode,
            retention_days=self.retention_days,
            interval=0.0,
        )

    def key(self, day: str, region: str, part: int) -> str:
        return object_key(
            self.segment_spec(day), region, self.stamp, self.worker, f"{self.export_id}-{part:04d}"
        )

    def query(self) -> dict[str, Any]:
        if self.time_field == TimeField.INGESTED:
            return ingested_query(self.project_id, self.frame)
        return event_time_query(self.project_id, self.frame)


class ExportProgress(Protocol):
    """Told what an export does (a progress bar, log lines, a database row)."""

    def started(self, total: int | None, already: int) -> None: ...

    def advanced(self, events: int, nbytes: int) -> None: ...

    def file_written(self, key: str, records: int) -> None: ...

    def finished(self) -> None: ...


class NoProgress:
    def started(self, total: int | None, already: int) -> None:
        return None

    def advanced(self, events: int, nbytes: int) -> None:
        return None

    def file_written(self, key: str, records: int) -> None:
        return None

    def finished(self) -> None:
        return None


SaveCheckpoint = Callable[[ExportCheckpoint], Awaitable[None]]
OnWritten = Callable[[DeliveredObject], Awaitable[None]]  # after each object (each region)


@dataclass(slots=True)
class _Chunk:
    day: str
    part: int
    hits: list[Hit] = field(default_factory=list)
    raw_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ExportResult:
    frame: Timeframe
    checkpoint: ExportCheckpoint
    indices: tuple[str, ...]
    mode: str  # pit or scroll; "" when nothing was read

    @property
    def empty(self) -> bool:
        return self.checkpoint.events == 0


class Exporter:
    """Runs one export (see the module doc). Not reusable: one instance per run."""

    def __init__(
        self,
        client: SearchClient,
        store: ObjectStore,
        spec: ExportSpec,
        *,
        template: Naming,
        checkpoint: ExportCheckpoint | None = None,
        save: SaveCheckpoint | None = None,
        progress: ExportProgress | None = None,
        reader: EventReader | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], float] = time.time,
        on_written: OnWritten | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._spec = spec
        self._template = template
        self._reader = reader or EventReader(client)
        if checkpoint is not None and checkpoint.export_id != spec.export_id:
            raise ValueError("the checkpoint belongs to another export")
        self.checkpoint = checkpoint or ExportCheckpoint(spec.export_id)
        self._next_part = dict(self.checkpoint.parts)  # day -> last part handed to the writer
        self._save = save
        self._progress = progress or NoProgress()
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._now = now
        self._on_written = on_written

    async def indices(self) -> list[ProjectIndex]:
        """The project's indices that may hold the frame; NoIndexError if it has none at all."""
        spec = self._spec
        every = await project_indices(self._client, self._template, spec.project_id)
        if not every:
            raise NoIndexError(
                f"project {spec.project_id} has no index in search "
                f"(looked for {project_pattern(self._template, spec.project_id)}): "
                "unknown project, or no event was ever indexed for it",
                status=404,
            )
        if self._spec.time_field == TimeField.INGESTED:
            return every  # ingestion time says nothing about the event-time index
        return [i for i in every if i.end > spec.frame.start and i.start < spec.frame.end]

    async def run(self) -> ExportResult:
        cp = self.checkpoint
        if cp.done:
            return ExportResult(self._spec.frame, cp, (), "")
        indices = await self.indices()
        if not indices:
            cp.total = cp.total or 0
            cp.done = True
            await self._checkpoint()
            return ExportResult(self._spec.frame, cp, (), "")
        target = index_target(self._template, self._spec.project_id, indices)
        query = self._spec.query()
        if cp.total is None:
            cp.total = await self._client.count(target, query)
        self._progress.started(cp.total, cp.events)
        queue: asyncio.Queue[_Chunk | None] = asyncio.Queue(maxsize=2)
        writer = asyncio.create_task(self._write_chunks(queue))
        try:
            await self._read_chunks(target, query, queue, writer)
            await queue.put(None)
            await writer
        finally:
            if not writer.done():
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
        cp.done = True
        await self._checkpoint()
        self._progress.finished()
        return ExportResult(
            self._spec.frame, cp, tuple(i.name for i in indices), self._reader.used_mode or ""
        )

    async def _read_chunks(
        self,
        target: str,
        query: dict[str, Any],
        queue: asyncio.Queue[_Chunk | None],
        writer: asyncio.Task[None],
    ) -> None:
        chunk: _Chunk | None = None
        pages = self._reader.pages(target, query, self.checkpoint.after)
        async with contextlib.aclosing(pages):
            async for page in pages:
                for hit in page:
                    day = from_epoch_ms(hit.time_ms).strftime("%Y-%m-%d")
                    if chunk is not None and (
                        chunk.day != day
                        or len(chunk.hits) >= self._max_records
                        or chunk.raw_bytes + len(hit.record) > self._max_bytes
                    ):
                        await self._hand_over(queue, chunk, writer)
                        chunk = None
                    if chunk is None:
                        part = self._next_part[day] = self._next_part.get(day, 0) + 1
                        chunk = _Chunk(day, part)
                    chunk.hits.append(hit)
                    chunk.raw_bytes += len(hit.record) + 1
        if chunk is not None:
            await self._hand_over(queue, chunk, writer)

    async def _hand_over(
        self, queue: asyncio.Queue[_Chunk | None], chunk: _Chunk, writer: asyncio.Task[None]
    ) -> None:
        if writer.done():  # the writer failed: stop reading and raise its error
            await writer
        put = asyncio.ensure_future(queue.put(chunk))
        try:
            done, _ = await asyncio.wait({put, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # also when interrupted: no put is left pending when the loop closes
            if not put.done():
                put.cancel()
                await asyncio.gather(put, return_exceptions=True)
        if put not in done:
            await writer  # raises the writer's error

    async def _write_chunks(self, queue: asyncio.Queue[_Chunk | None]) -> None:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            await self._write(chunk)

    async def _write(self, chunk: _Chunk) -> None:
        spec = self._spec
        segment = spec.segment_spec(chunk.day)
        records = [hit.record for hit in chunk.hits]
        body = await asyncio.to_thread(build_body, segment, records)
        expires = max(
            delete_at(chunk.day, spec.retention_days), int(self._now()) + MIN_REMAINING_LIFE_S
        )
        headers = object_headers(body, expires)
        headers["X-Object-Meta-Export-Id"] = spec.export_id
        first_key = ""
        for region in spec.regions:
            bucket = Bucket(spec.project_id, region, spec.container, spec.write_mode)
            key = spec.key(chunk.day, region, chunk.part)
            first_key = first_key or key
            await self._put(bucket, key, body.data, headers, body.md5)
            if self._on_written is not None:
                await self._on_written(
                    DeliveredObject(
                        project_id=spec.project_id,
                        region=region,
                        container=spec.container,
                        key=key,
                        day=chunk.day,
                        records=body.records,
                        bytes=len(body.data),
                        sha256=body.sha256,
                        object_sha256=body.object_sha256,
                        first_event_time=body.first_event_time,
                        last_event_time=body.last_event_time,
                        delivered_at=datetime.now(UTC),
                    )
                )
        cp = self.checkpoint
        cp.after = chunk.hits[-1].sort
        cp.parts[chunk.day] = chunk.part
        cp.day_counts[chunk.day] = cp.day_counts.get(chunk.day, 0) + len(records)
        cp.files.append(first_key)
        cp.events += len(records)
        cp.bytes += len(body.data) * len(spec.regions)
        await self._checkpoint()
        self._progress.advanced(len(records), len(body.data) * len(spec.regions))
        self._progress.file_written(first_key, len(records))

    async def _put(
        self, bucket: Bucket, key: str, data: bytes, headers: dict[str, str], md5: str
    ) -> None:
        delay = 1.0
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                await self._store.ensure_container(bucket)
                etag = await self._store.put(bucket, key, data, headers)
                if etag.strip('"').lower() != md5:
                    raise TransientError(f"store answered ETag {etag!r} for {key}, expected {md5}")
                return
            except ClientError as exc:
                if not exc.transient or attempt == PUT_ATTEMPTS:
                    raise
                log.warning("export: %s not written (%s); retry in %.0f s", key, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _checkpoint(self) -> None:
        if self._save is not None:
            await self._save(self.checkpoint)
