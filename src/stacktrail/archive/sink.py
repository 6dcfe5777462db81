"""The archive sink: records into the durable spool, sealed segments out to the store.

`put` only queues a record (after waiting for room while the spool is full: that wait is
the back-pressure that stops the source). A writer task takes whatever arrived within a
few milliseconds, appends it to the spool and makes it durable with one group commit;
only then are the records resolved DELIVERED, so their messages may be acked. A sealer
task closes segments past their trail's interval, and the uploader (`archive_upload`)
delivers sealed segments per project and region.

Composition root:

    store = open_store(settings, keystone)          # clients.store
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()                              # recovers what a crash left
    ... sink.put(record) ...
    await sink.stop(grace)                          # seals, delivers within grace

`stacktrail archive flush` without a running pipeline: `await flush_spool(settings,
store, ledger)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, date, datetime

import orjson

from stacktrail.archive.layout import InvalidName, check_spec, spec_delete_at, worker_name
from stacktrail.archive.spool import SeenIds, Segment, SegmentSpec, Spool
from stacktrail.archive.spool.framing import FRAME_OVERHEAD
from stacktrail.archive.stores.base import ObjectStore
from stacktrail.archive.uploader import Backoff, DeleteAt, Destination, FlushSummary, Uploader
from stacktrail.config import Settings
from stacktrail.domain.backlog import SpoolBacklog
from stacktrail.domain.delivery import Outcome, Record
from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.ledger import DeliveryLedger
from stacktrail.domain.trail import ArchiveSource, Trail
from stacktrail.telemetry import metrics
from stacktrail.telemetry.repeats import Repeats

__all__ = ["ArchiveSink", "FlushSummary", "flush_spool"]

log = logging.getLogger(__name__)

BATCH_WINDOW = 0.002  # seconds the writer waits so concurrent puts share one fsync
BATCH_MAX_BYTES = 8 << 20
SEAL_CHECK_INTERVAL = 0.5
WRITE_RETRY = 1.0
PAUSE_GRACE = 2.0  # a put may wait this long for room before /readyz calls the spool full


def _spool(settings: Settings) -> Spool:
    return Spool(
        settings.spool_dir,
        segment_max_bytes=settings.archive_segment_max_bytes,
        max_bytes=settings.spool_max_bytes,
    )


def _uploader(
    settings: Settings,
    spool: Spool,
    store: ObjectStore,
    ledger: DeliveryLedger,
    delete_at: DeleteAt,
    on_deleted: asyncio.Event | None = None,
    destination: Destination | None = None,
) -> Uploader:
    return Uploader(
        spool,
        store,
        ledger,
        worker=worker_name(settings),
        concurrency=settings.archive_upload_concurrency,
        retry_max=settings.archive_retry_max.total_seconds(),
        probe_interval=settings.archive_probe_interval.total_seconds(),
        delete_at=delete_at,
        on_deleted=on_deleted.set if on_deleted is not None else lambda: None,
        on_failed=on_deleted.set if on_deleted is not None else lambda: None,
        report_interval=settings.archive_log_interval.total_seconds(),
        destination=destination,
    )


SEGMENT_HEADER_MARGIN = 4096


class ArchiveSink:
    name = "archive"

    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        ledger: DeliveryLedger,
        *,
        delete_at: DeleteAt = spec_delete_at,
        directory: TrailDirectory | None = None,
    ) -> None:
        """`directory`: the live trails, so spooled data follows a changed destination."""
        self._default_regions = tuple(settings.archive_regions)
        self._spool = _spool(settings)
        self._seen = SeenIds(settings.spool_dir, settings.spool_seen_ids)
        self._project_max_bytes = settings.spool_project_max_bytes
        self._space_freed = asyncio.Event()
        self._uploader = _uploader(
            settings,
            self._spool,
            store,
            ledger,
            delete_at,
            self._space_freed,
            destination=directory.get if directory is not None else None,
        )
        self._queue: list[tuple[Record, SegmentSpec, bytes]] = []
        self._queued_bytes = 0
        self._queued_by_project: dict[str, int] = {}
        self._writing = False
        self._wake_writer = asyncio.Event()
        self._idle = asyncio.Event()  # set whenever the writer finished a batch
        self._seal_now = False
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._specs: dict[tuple[int, str, date], tuple[Trail, SegmentSpec, str]] = {}
        self._write_errors = Repeats(log, "archive spool: write failed, retrying every second")
        self._seal_errors = Repeats(log, "archive spool: sealing failed, retrying")
        self._paused_since: float | None = None  # a put waits for room in the spool
        self._held_back: set[str] = set()  # projects whose last record was over the share
        self._seal_projects: set[str] = set()  # healthy projects over their share
        metrics.SPOOL_BYTES.set_function(lambda: self._spool.used_bytes)
        metrics.SPOOL_OLDEST_AGE.set_function(self.oldest_undelivered_age)

    # --- Sink protocol

    async def start(self) -> None:
        report = await asyncio.to_thread(self._spool.open)
        await asyncio.to_thread(self._seen.open)
        if report.recovered or report.sealed or report.corrupt:
            log.info(
                "archive spool: %d segment(s) recovered (%d cut), %d sealed waiting, %d set aside",
                report.recovered,
                len(report.truncated),
                report.sealed,
                len(report.corrupt),
            )
        self._tasks = [
            asyncio.create_task(self._writer(), name="archive-writer"),
            asyncio.create_task(self._sealer(), name="archive-sealer"),
            asyncio.create_task(self._uploader.run(), name="archive-uploader"),
        ]
        self._uploader.poke()

    def wants(self, record: Record) -> bool:
        trail = record.trail
        return (
            trail.enabled and trail.archive.enabled and trail.archive.source is ArchiveSource.INGEST
        )

    async def put(self, record: Record) -> None:
        if self._stopping:
            record.resolve(Outcome.RETRY, "archive sink is stopping")
            return
        if record.ticket.redelivered and (record.project_id, record.event.id) in self._seen:
            # Durable in the spool (or delivered) before its message went back to the queue.
            metrics.ARCHIVE_REDELIVERED_SKIPPED.inc()
            record.resolve(Outcome.DELIVERED)
            return
        spec, problem = self._spec(record)
        if problem:
            record.resolve(Outcome.REJECTED, problem)
            return
        try:
            payload = record.event.body_json()
        except orjson.JSONEncodeError as exc:  # decode's limits should make this unreachable
            log.exception("cannot encode event %s for the archive", record.event.id)
            record.resolve(Outcome.REJECTED, f"archive: cannot encode the event: {exc}"[:500])
            return
        size = len(payload) + FRAME_OVERHEAD
        refused = await self._reserve(size, record.project_id)
        if refused:
            record.resolve(Outcome.REJECTED, refused)
            return
        if self._stopping:
            record.resolve(Outcome.RETRY, "archive sink is stopping")
            return
        self._queue.append((record, spec, payload))
        self._queued_bytes += size
        project = record.project_id
        self._queued_by_project[project] = self._queued_by_project.get(project, 0) + size
        self._wake_writer.set()

    async def stop(self, grace: float) -> None:
        """Write what is queued, seal everything, deliver what fits in `grace` seconds."""
        deadline = time.monotonic() + grace
        self._stopping = True
        self._space_freed.set()  # puts waiting for room resolve RETRY
        self._wake_writer.set()
        if self._tasks:
            writer, *others = self._tasks
            try:
                async with asyncio.timeout(max(grace, 0.1)):
                    await asyncio.shield(writer)
            except TimeoutError:
                writer.cancel()
            for task in others:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for record, _spec, _payload in self._queue:
            record.resolve(Outcome.RETRY, "archive sink stopped before the record was spooled")
        self._queue.clear()
        try:
            await asyncio.to_thread(self._spool.seal_all)
            summary = await self._uploader.deliver_pending(deadline)
            log.info(
                "archive: stop delivered %d object(s); %d segment(s), %d bytes stay spooled",
                summary.objects,
                summary.remaining_segments,
                summary.remaining_bytes,
            )
        finally:
            await self._uploader.aclose()
            self._seen.close()
            await asyncio.to_thread(self._spool.close)

    # --- operations

    async def flush(self) -> FlushSummary:
        """Spool what is queued, seal every segment and try every delivery once, now."""
        while self._queue or self._writing:
            self._idle.clear()
            await self._idle.wait()
        await asyncio.to_thread(self._spool.seal_all)
        return await self._uploader.deliver_pending()

    @property
    def queued_bytes(self) -> int:
        """Bytes accepted by `put` and not yet written to the spool."""
        return self._queued_bytes

    def pending_bytes(self, project_id: str) -> int:
        """Bytes of a project's events that are spooled or queued but not yet delivered."""
        return self._spool.pending_bytes(project_id) + self._queued_by_project.get(project_id, 0)

    def retry_now(self, project_id: str) -> int:
        """Deliver the project's waiting segments now (ends their backoff)."""
        return self._uploader.retry_now(project_id)

    def oldest_undelivered_age(self) -> float:
        """Seconds the oldest spooled, undelivered record has waited (0: none)."""
        oldest = self._spool.oldest_created()
        return 0.0 if oldest is None else max(time.time() - oldest, 0.0)

    def health(self, failing_for: float) -> str:
        """Why the archive is not ready ("" when it is): spool writes fail (a full disk),
        the spool is full (consumption paused) or deliveries have failed for longer than
        `failing_for` seconds."""
        now = time.monotonic()
        if self._write_errors.failing_for > PAUSE_GRACE:
            return f"spool writes fail: {self._write_errors.last_message}"
        paused = self._paused_since
        if paused is not None and not self._stopping and now - paused > PAUSE_GRACE:
            return f"spool full: consumption paused for {now - paused:.0f}s"
        since = self._uploader.failing_since()
        if since is not None and now - since > failing_for:
            return f"archive deliveries have failed for {now - since:.0f}s (limit {failing_for:g}s)"
        return ""

    def backlog(self, project_id: str) -> SpoolBacklog:
        """What the project's archive holds back here (for its status)."""
        spooled, records, oldest = self._spool.backlog(project_id)
        queued = self._queued_by_project.get(project_id, 0)
        failing = self._uploader.failing(project_id)
        total = spooled + queued
        return SpoolBacklog(
            bytes=total,
            records=records + sum(1 for r, _s, _p in self._queue if r.project_id == project_id)
            if queued
            else records,
            oldest=datetime.fromtimestamp(oldest, UTC) if oldest is not None else None,
            share=self._project_max_bytes,
            failing=failing,
            held_back=failing and project_id in self._held_back,
        )

    def delivery_backoff(self, project_id: str) -> dict[str, Backoff]:
        """Region -> failures, next attempt and last error of a project's failing deliveries."""
        return self._uploader.backoff(project_id)

    # --- internals

    def _spec(self, record: Record) -> tuple[SegmentSpec, str]:
        """The record's segment spec and what is wrong with its names ("" if nothing).

        Cached per (trail object, project, day): records share a few trails, and the
        spool compares specs by identity first.
        """
        trail = record.trail
        date = record.event.time.date()
        key = (id(trail), record.project_id, date)
        hit = self._specs.get(key)
        if hit is not None and hit[0] is trail:
            return hit[1], hit[2]
        spec = SegmentSpec.for_trail(
            record.project_id, date.isoformat(), trail, self._default_regions
        )
        try:
            check_spec(spec)
            problem = ""
        except InvalidName as exc:
            problem = f"archive: {exc}"
        if len(self._specs) >= 10_000:
            self._specs.clear()
        self._specs[key] = (trail, spec, problem)
        return spec, problem

    def _fits(self, size: int) -> bool:
        # The margin covers the header frame of a segment this record may open, so the
        # bound holds for everything on disk, not only for the records.
        used = self._spool.used_bytes + self._queued_bytes
        return used == 0 or used + size + SEGMENT_HEADER_MARGIN <= self._spool.max_bytes

    def _over_share(self, size: int, project_id: str) -> bool:
        pending = self.pending_bytes(project_id)  # a first record always fits, as in `_fits`
        return pending > 0 and pending + size > self._project_max_bytes

    async def _reserve(self, size: int, project_id: str) -> str:
        """Wait until the spool has room for `size` bytes of `project_id` (back-pressure).

        A project over its share whose last delivery succeeded goes on (bounded by the
        whole spool), its segments sealed at once so its deliveries free its bytes and a
        broken destination shows at once; one whose deliveries were not tried yet waits
        for that first try; once one has failed, its records are refused instead (the
        reason is returned), so a broken destination never holds more than its share and
        the other projects keep flowing. Only a full spool makes everybody wait.
        """
        while not self._stopping:
            self._space_freed.clear()
            over = self._over_share(size, project_id)
            if not over and self._fits(size):  # the common case, first: once per record
                self._paused_since = None
                self._held_back.discard(project_id)
                return ""
            healthy = self._uploader.delivers(project_id) and not self._uploader.failing(project_id)
            if over and healthy and self._fits(size):
                self._seal_projects.add(project_id)
                self._paused_since = None
                return ""
            if over and self._uploader.failing(project_id):
                self._held_back.add(project_id)
                return (
                    f"archive: project {project_id} holds {self.pending_bytes(project_id)} "
                    "spooled bytes its destination refuses (see its trail status); over its "
                    f"share of {self._project_max_bytes} bytes (STACKTRAIL_SPOOL_PROJECT_MAX_BYTES)"
                )
            self._seal_now = True  # open segments can only drain once sealed
            if self._paused_since is None:
                self._paused_since = time.monotonic()
            await self._space_freed.wait()
        self._paused_since = None
        return ""

    async def _writer(self) -> None:
        while not (self._stopping and not self._queue):
            await self._wake_writer.wait()
            await asyncio.sleep(BATCH_WINDOW)
            self._wake_writer.clear()
            batch = self._take_batch()
            if not batch:
                continue
            self._writing = True
            try:
                sealed = await asyncio.to_thread(self._write, batch)
            except asyncio.CancelledError:  # stop ran out of time: these resolve RETRY
                self._queue[:0] = batch
                raise
            except Exception as exc:
                # ENOSPC and the like fail every retry: logged once per state change.
                self._write_errors.failed(f"{type(exc).__name__}: {exc}", exc_info=exc)
                self._queue[:0] = batch
                self._writing = False
                await asyncio.sleep(WRITE_RETRY)
                self._wake_writer.set()
                continue
            self._writing = False
            self._write_errors.recovered()
            self._idle.set()
            for record, _spec, payload in batch:
                size = len(payload) + FRAME_OVERHEAD
                self._queued_bytes -= size
                project = record.project_id
                left = self._queued_by_project[project] - size
                if left:
                    self._queued_by_project[project] = left
                else:
                    del self._queued_by_project[project]
                record.resolve(Outcome.DELIVERED)
            # While the batch was written its bytes counted twice (queued and in the
            # spool); a put that waited for room then may fit now.
            self._space_freed.set()
            if sealed:
                self._uploader.poke()
            if self._queue:
                self._wake_writer.set()

    def _write(self, batch: list[tuple[Record, SegmentSpec, bytes]]) -> list[Segment]:
        """Spool a batch durably, then note its ids (see spool/seen.py); in a thread."""
        sealed = self._spool.write([(spec, payload) for _r, spec, payload in batch])
        try:
            self._seen.add((r.project_id, r.event.id) for r, _s, _p in batch)
        except OSError as exc:  # the records are durable; only de-duplication suffers
            log.warning("archive spool: could not note spooled ids: %s", exc)
        return sealed

    def _take_batch(self) -> list[tuple[Record, SegmentSpec, bytes]]:
        total = 0
        count = 0
        for _record, _spec, payload in self._queue:
            total += len(payload)
            count += 1
            if total >= BATCH_MAX_BYTES:
                break
        batch = self._queue[:count]
        del self._queue[:count]
        return batch

    async def _sealer(self) -> None:
        while True:
            await asyncio.sleep(SEAL_CHECK_INTERVAL)
            try:
                if self._seal_now:
                    self._seal_now = False
                    sealed = await asyncio.to_thread(self._spool.seal_all)
                else:
                    projects, self._seal_projects = self._seal_projects, set()
                    sealed = await asyncio.to_thread(self._spool.seal_due, None, projects)
                # segments waiting for a failing destination move out of the journal
                rebuilt = await asyncio.to_thread(self._spool.rebuild)
            except OSError as exc:
                self._seal_errors.failed(f"{type(exc).__name__}: {exc}", exc_info=exc)
                continue
            self._seal_errors.recovered()
            if sealed:
                self._uploader.poke()
            if rebuilt:
                self._space_freed.set()


async def flush_spool(
    settings: Settings,
    store: ObjectStore,
    ledger: DeliveryLedger,
    *,
    delete_at: DeleteAt = spec_delete_at,
    deadline: float | None = None,
) -> FlushSummary:
    """Seal and deliver everything in `settings.spool_dir` once, without a pipeline.

    `deadline` is a `time.monotonic()` value; deliveries still running then are
    cancelled and stay spooled. Raises `SpoolLockedError` when a running pipeline holds
    the spool.
    """
    spool = _spool(settings)
    await asyncio.to_thread(spool.open)
    try:
        await asyncio.to_thread(spool.seal_all)
        uploader = _uploader(settings, spool, store, ledger, delete_at)
        try:
            return await uploader.deliver_pending(deadline)
        finally:
            await uploader.aclose()
    finally:
        with contextlib.suppress(OSError):
            spool.close()
