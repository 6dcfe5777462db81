"""The uploader: delivers sealed spool segments to every region of their trail.

A delivery job is one (segment, region). Jobs run concurrently, at most `concurrency`
per region, shared out among the projects in turn (each project's oldest segment
first): a region whose uploads hang (a black-holed store answers only when the request
times out) holds its own slots, never another region's, and a project in backoff costs
each scan one look, not a walk over its backlog.
Backoff is kept per (project, region): after a failure that pair waits (1 s, 2 s, 4 s
... up to `retry_max`; a permanent error such as a missing container or a refused grant
waits `retry_max` at once) and then probes with one job at a time, while every other
project and region goes on. The delays end early once the store answers again: a
success in a region makes that region's transiently failing pairs due at once, and while
some wait, one cheap probe per region (a HEAD) runs every `probe_interval`, so uploads
resume within about a second of the store's return instead of after the longest
backoff. A region is confirmed only when the store's ETag equals the MD5 of the bytes
sent and the delivery ledger recorded the object (the digests list what the ledger
holds, so an unrecorded object would be missing from them): then the spool records it,
and deletes the segment once all its regions confirmed. A stored object whose ledger
write failed is not uploaded again: its record is retried (backing off up to
`LEDGER_RETRY_MAX`, not woken by store probes). Every failure goes to the ledger too, as
far as it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from stacktrail.archive.layout import (
    InvalidName,
    ObjectBody,
    build_body,
    check_spec,
    object_headers,
    object_key,
    spec_delete_at,
)
from stacktrail.archive.report import DeliveryReport
from stacktrail.archive.spool import Segment, SegmentSpec, Spool
from stacktrail.archive.stores.base import Bucket, NoSuchObject, ObjectStore
from stacktrail.domain.backoff import exponential, jittered
from stacktrail.domain.errors import ClientError, TransientError
from stacktrail.domain.ledger import DeliveredObject, DeliveryError, DeliveryLedger
from stacktrail.domain.trail import Trail
from stacktrail.telemetry import metrics
from stacktrail.telemetry.repeats import Repeats

log = logging.getLogger(__name__)

DeleteAt = Callable[[SegmentSpec], int]
Destination = Callable[[str], Trail | None]  # project id -> its current trail

PROBE_KEY = "stacktrail-probe"  # a HEAD of a name no delivery uses: any answer means "up"
LEDGER_RETRY_MAX = 30.0  # seconds: the ledger is the config database, back soon after an outage


class LedgerUnavailable(TransientError):
    """The object is stored, but the delivery ledger did not record it (yet)."""


@dataclass(slots=True)
class FlushSummary:
    """What one round of deliveries did (returned by flush and stop)."""

    objects: int = 0
    records: int = 0
    bytes: int = 0
    expired: int = 0  # (segment, region) pairs dropped: past their retention on arrival
    errors: list[DeliveryError] = field(default_factory=list)
    remaining_segments: int = 0
    remaining_bytes: int = 0


@dataclass(slots=True)
class Backoff:
    failures: int = 0
    until: float = 0.0  # monotonic time of the next attempt
    last_error: str = ""
    transient: bool = False  # the last failure was the store being away (probe-able)
    ledger: bool = False  # the last failure was the ledger's (a store probe says nothing)
    bucket: Bucket | None = None  # where the probe looks
    since: float = 0.0  # monotonic time of the first failure in this run
    log: Repeats | None = None  # its failures, logged once per change plus a summary


class Uploader:
    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        ledger: DeliveryLedger,
        *,
        worker: str,
        concurrency: int,
        retry_max: float,
        delete_at: DeleteAt = spec_delete_at,
        on_deleted: Callable[[], None] = lambda: None,
        on_failed: Callable[[], None] = lambda: None,
        report_interval: float = 60.0,
        destination: Destination | None = None,
        probe_interval: float = 1.0,
    ) -> None:
        """`destination` names a project's current trail, so a segment spooled for a
        container that has changed since goes to the trail's container now."""
        self._destination = destination
        self._spool = spool
        self._store = store
        self._ledger = ledger
        self._worker = worker
        self._concurrency = concurrency
        self._retry_max = retry_max
        self._delete_at = delete_at
        self._on_deleted = on_deleted
        self._on_failed = on_failed
        self._slots: dict[str, asyncio.Semaphore] = {}  # region -> its upload slots
        self._inflight: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._inflight_in: Counter[str] = Counter()  # region -> jobs started there
        self._active: Counter[tuple[str, str]] = Counter()
        self._backoff: dict[tuple[str, str], Backoff] = {}
        # project -> the regions of its pairs in `_backoff`: the share check asks per
        # record of a held-back project, with thousands of pairs failing
        self._failing_in: dict[str, set[str]] = {}
        # (segment id, region) -> the object stored there whose ledger write failed
        self._unrecorded: dict[tuple[int, str], DeliveredObject] = {}
        self._wake = asyncio.Event()
        self._summaries: list[FlushSummary] = []  # rounds in progress (flush, stop)
        self.report = DeliveryReport(report_interval)
        # a count of projects, not a label per project: bounded cardinality
        metrics.ARCHIVE_FAILING_PROJECTS.set_function(lambda: len(self._failing_in))
        self._delivering: set[str] = set()  # projects whose last delivery succeeded
        self._probe_interval = probe_interval
        self._probes: dict[str, asyncio.Task[None]] = {}  # region -> probe in flight
        self._probed_at: dict[str, float] = {}
        self._probes_looked_at = -math.inf  # when `_start_probes` last looked at the pairs
        self._served_last: dict[str, str] = {}  # region -> the project whose job started last
        self.probes = 0  # probes sent (tests)

    def poke(self) -> None:
        """New sealed segments (or a finished job): look for work."""
        self._wake.set()

    def failing(self, project_id: str) -> bool:
        """Whether a delivery of the project failed and has not succeeded since."""
        return project_id in self._failing_in

    def delivers(self, project_id: str) -> bool:
        """Whether the project's last delivery succeeded (and none failed since)."""
        return project_id in self._delivering

    def failing_since(self) -> float | None:
        """Monotonic time since which some delivery has failed without success (None: none)."""
        times = [b.since for b in self._backoff.values() if b.failures]
        return min(times) if times else None

    def backoff(self, project_id: str) -> dict[str, Backoff]:
        """Region -> backoff state of a project's failing deliveries (for status pages)."""
        return {r: self._backoff[(project_id, r)] for r in self._failing_in.get(project_id, ())}

    def retry_now(self, project_id: str) -> int:
        """End the backoff of the project's failing deliveries; returns how many regions."""
        woken = 0
        for region in self._failing_in.get(project_id, ()):
            self._backoff[(project_id, region)].until = 0.0
            woken += 1
        self._wake.set()
        return woken

    def current_spec(self, spec: SegmentSpec) -> SegmentSpec:
        """`spec` pointed at the project's current container, prefix and write mode (a
        destination changed after the segment was spooled); unchanged when the trail
        names no usable destination."""
        if self._destination is None:
            return spec
        trail = self._destination(spec.project_id)
        if trail is None or not trail.archive.enabled:
            return spec
        archive = trail.archive
        if (archive.container, archive.prefix, archive.write_mode) == (
            spec.container,
            spec.prefix,
            spec.write_mode,
        ):
            return spec
        moved = replace(
            spec, container=archive.container, prefix=archive.prefix, write_mode=archive.write_mode
        )
        try:
            check_spec(moved)
        except InvalidName:
            return spec
        return moved

    # --- the background loop

    async def run(self) -> None:
        while True:
            self._wake.clear()
            next_due = self._start_ready()
            timeout = None if next_due is None else max(next_due - time.monotonic(), 0.01)
            # (asyncio.timeout: Python 3.11's wait_for swallows a cancel that comes as the
            # wake-up does, and this loop would never end)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _start_ready(self) -> float | None:
        """Start jobs that may run now; return when the earliest backoff ends."""
        now = time.monotonic()
        next_due: float | None = None
        inflight_in = self._inflight_in
        for region, waiting in self._spool.waiting_regions().items():
            # a region whose slots are taken, or whose waiting segments all run, has
            # nothing to start: this runs after every finished job
            if inflight_in[region] < self._concurrency and waiting > inflight_in[region]:
                due = self._start_in(region, now)
                if due is not None:
                    next_due = due if next_due is None else min(next_due, due)
        probe_due = self._start_probes(now)
        if probe_due is not None:
            next_due = probe_due if next_due is None else min(next_due, probe_due)
        return next_due

    def _start_in(self, region: str, now: float) -> float | None:
        """Fill the region's free slots: one job per project in turn, from the project
        after the one served last, so every project gets its share of the slots. A
        project in backoff costs one look, not a walk over its waiting segments: after
        an outage of some containers tens of thousands wait. Returns when the earliest
        backoff seen here ends."""
        spool, inflight, inflight_in = self._spool, self._inflight, self._inflight_in
        projects = spool.lacking_projects(region)
        with contextlib.suppress(ValueError):  # none served yet, or that one is done
            at = projects.index(self._served_last.get(region, "")) + 1
            projects = projects[at:] + projects[:at]
        next_due: float | None = None
        while projects:
            again: list[str] = []  # those that got a job and may take another
            for project in projects:
                if inflight_in[region] >= self._concurrency:
                    return next_due
                key = (project, region)
                state = self._backoff.get(key)
                failing = False
                if state is not None and state.failures:
                    failing = True
                    if state.until > now:
                        next_due = state.until if next_due is None else min(next_due, state.until)
                        continue
                    if self._active[key]:
                        continue  # a failing pair probes with one job at a time
                for seg in spool.lacking(region, project):
                    if (seg.id, region) not in inflight:
                        self._spawn(seg, region)
                        self._served_last[region] = project
                        if not failing:
                            again.append(project)
                        break
            projects = again
        return next_due

    def _start_probes(self, now: float) -> float | None:
        """One probe per region whose transient failures still wait longer than a probe
        interval; returns when the next probe is due. The failing pairs (thousands, when
        a store is down) are looked over at most twice per probe interval, not after
        every finished job."""
        again = self._probes_looked_at + self._probe_interval / 2
        if now < again:
            return again if self._backoff else None
        self._probes_looked_at = now
        due: float | None = None
        waiting: dict[str, Bucket] = {}
        for (project, region), state in self._backoff.items():
            bucket = state.bucket
            long_wait = state.until - now > self._probe_interval
            idle = not self._active[(project, region)]
            probe_able = state.transient and not state.ledger
            if state.failures and probe_able and bucket is not None and long_wait and idle:
                waiting.setdefault(region, bucket)
        for region, bucket in waiting.items():
            if region in self._probes:
                continue
            at = self._probed_at.get(region, 0.0) + self._probe_interval
            if at <= now:
                self._probed_at[region] = now
                task = asyncio.create_task(self._probe(region, bucket), name="archive-probe")
                self._probes[region] = task
                at = now + self._probe_interval
            due = at if due is None else min(due, at)
        return due

    async def _probe(self, region: str, bucket: Bucket) -> None:
        self.probes += 1
        try:
            async with asyncio.timeout(self._probe_interval):
                await self._store.head(bucket, PROBE_KEY)
        except NoSuchObject:
            self._answered(region, ledger=False)
        except (TransientError, TimeoutError, OSError):
            pass  # still away
        except ClientError:
            self._answered(region, ledger=False)  # it answers (a refusal is the job's business)
        except Exception:
            log.debug("archive: probe of region %s failed", region, exc_info=True)
        else:
            self._answered(region, ledger=False)
        finally:
            self._probes.pop(region, None)
            self._wake.set()

    def _answered(self, region: str, *, ledger: bool) -> None:
        """The store of `region` answers again (and the ledger, when `ledger`): its
        transient failures retry now."""
        now = time.monotonic()
        for (_project, r), state in self._backoff.items():
            if (
                r == region
                and state.transient
                and state.until > now
                and (ledger or not state.ledger)
            ):
                state.until = now
        self._wake.set()

    def _failing_pair(self, key: tuple[str, str]) -> Backoff:
        """The backoff state of a pair whose delivery failed (made on its first failure)."""
        self._failing_in.setdefault(key[0], set()).add(key[1])
        return self._backoff.setdefault(key, Backoff())

    def _recovered(self, key: tuple[str, str]) -> Backoff | None:
        """Drop a pair's backoff state after a success; returns it (None: it had none)."""
        state = self._backoff.pop(key, None)
        regions = self._failing_in.get(key[0])
        if regions is not None:
            regions.discard(key[1])
            if not regions:
                del self._failing_in[key[0]]
        return state

    def _spawn(self, seg: Segment, region: str) -> asyncio.Task[None]:
        task = asyncio.create_task(self._attempt(seg, region))
        self._inflight[(seg.id, region)] = task
        self._inflight_in[region] += 1
        self._active[(seg.spec.project_id, region)] += 1
        return task

    # --- one attempt

    async def _attempt(self, seg: Segment, region: str) -> None:
        key = (seg.spec.project_id, region)
        try:
            async with self._slots.setdefault(region, asyncio.Semaphore(self._concurrency)):
                delivered = await self._deliver(seg, region)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(seg, region, exc)
        else:
            metrics.ARCHIVE_UPLOADS.labels(
                outcome="expired" if delivered is None else "delivered"
            ).inc()
            self._delivering.add(key[0])
            state = self._recovered(key)
            if state is not None:
                if state.log is not None:
                    state.log.recovered()
                # the first success ends the region's other delays
                self._answered(region, ledger=True)
            if delivered is not None:
                self.report.delivered(key[0], delivered.records, delivered.bytes)
            for summary in self._summaries:
                if delivered is None:
                    summary.expired += 1
                    continue
                summary.objects += 1
                summary.records += delivered.records
                summary.bytes += delivered.bytes
        finally:
            self._inflight.pop((seg.id, region), None)
            self._inflight_in[region] -= 1
            if not self._inflight_in[region]:
                del self._inflight_in[region]
            self._active[key] -= 1
            if not self._active[key]:
                del self._active[key]
            self._wake.set()

    async def _deliver(self, seg: Segment, region: str) -> DeliveredObject | None:
        """Deliver one segment to one region; None when its retention has already passed."""
        unrecorded = self._unrecorded.pop((seg.id, region), None)
        if unrecorded is not None:  # stored already: only the ledger is missing it
            delivered = replace(unrecorded, delivered_at=datetime.now(UTC))
        else:
            stored = await self._store_segment(seg, region)
            if stored is None:
                return None
            delivered = stored
        try:
            # delivered_at is when it is recorded: an earlier period's digest may be written
            await self._ledger.record_delivery(delivered)
        except Exception as exc:
            self._unrecorded[(seg.id, region)] = delivered
            raise LedgerUnavailable(
                f"{delivered.key} is stored, but the delivery ledger did not record it "
                f"({type(exc).__name__}: {exc}); the segment is delivered once it does"
            ) from exc
        if await asyncio.to_thread(self._spool.confirm, seg, region):
            self._on_deleted()
        return delivered

    async def _store_segment(self, seg: Segment, region: str) -> DeliveredObject | None:
        """Upload one segment to one region; None when its retention has already passed."""
        spec = self.current_spec(seg.spec)
        bucket = Bucket(spec.project_id, region, spec.container, spec.write_mode)
        key = object_key(spec, region, seg.stamp, self._worker, seg.name)
        expires = self._delete_at(spec)
        if expires <= time.time():
            await self._past_retention(seg, region)
            return None
        body: ObjectBody = await asyncio.to_thread(self._build, seg)
        headers = object_headers(body, expires)
        await self._store.ensure_container(bucket)
        etag = await self._store.put(bucket, key, body.data, headers)
        if etag.strip('"').lower() != body.md5:
            raise TransientError(
                f"store answered ETag {etag!r} for {key}, expected {body.md5}: not confirmed"
            )
        return DeliveredObject(
            project_id=spec.project_id,
            region=region,
            container=spec.container,
            key=key,
            day=spec.day,
            records=body.records,
            bytes=len(body.data),
            sha256=body.sha256,
            object_sha256=body.object_sha256,
            first_event_time=body.first_event_time,
            last_event_time=body.last_event_time,
            delivered_at=datetime.now(UTC),
        )

    async def _past_retention(self, seg: Segment, region: str) -> None:
        """Late events whose retention is over: the store would refuse (or at once delete)
        them, so the segment is dropped on purpose, with a note in the project's status."""
        spec = seg.spec
        message = (
            f"events of {spec.day} arrived after their retention of {spec.retention_days} days "
            f"had passed; spool segment {seg.name} was not archived"
        )
        log.warning("archive: project %s region %s: %s", spec.project_id, region, message)
        error = DeliveryError(spec.project_id, region, message, datetime.now(UTC))
        await self._to_ledger(self._ledger.record_error(error))
        if await asyncio.to_thread(self._spool.confirm, seg, region):
            self._on_deleted()

    def _build(self, seg: Segment) -> ObjectBody:
        return build_body(seg.spec, self._spool.read(seg))

    async def _failed(self, seg: Segment, region: str, exc: Exception) -> None:
        key = (seg.spec.project_id, region)
        self._delivering.discard(key[0])
        state = self._failing_pair(key)
        if not state.failures:
            state.since = time.monotonic()
        state.failures += 1
        transient = isinstance(exc, ClientError) and exc.transient
        state.ledger = isinstance(exc, LedgerUnavailable)
        if transient:
            cap = min(self._retry_max, LEDGER_RETRY_MAX) if state.ledger else self._retry_max
            delay = jittered(exponential(state.failures, first=1.0, cap=cap))
        else:
            delay = self._retry_max
        state.transient = transient
        state.bucket = Bucket(seg.spec.project_id, region, seg.spec.container, seg.spec.write_mode)
        state.until = time.monotonic() + delay
        if isinstance(exc, ClientError | InvalidName):
            message = str(exc)
        else:
            message = f"{type(exc).__name__}: {exc}"
            log.exception("archive: unexpected error delivering segment %s", seg.name)
        state.last_error = message
        self.report.failed(seg.spec.project_id)
        metrics.ARCHIVE_UPLOADS.labels(outcome="failed").inc()
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        if state.log is None:
            state.log = Repeats(
                log,
                f"archive: project {seg.spec.project_id} region {region} "
                f"container {seg.spec.container}: not delivered",
            )
        state.log.failed(
            f"{message} (retries back off up to {self._retry_max:.0f} s)",
            detail=f"; next retry at {retry_at.isoformat(timespec='seconds')} (in {delay:.0f} s)",
        )
        error = DeliveryError(
            project_id=seg.spec.project_id, region=region, message=message, at=datetime.now(UTC)
        )
        for summary in self._summaries:
            summary.errors.append(error)
        self._on_failed()  # puts waiting for room re-check their project's share
        await self._to_ledger(self._ledger.record_error(error))

    @staticmethod
    async def _to_ledger(call: Awaitable[None]) -> None:
        try:
            await call
        except Exception:
            log.exception("archive: the delivery ledger failed to record an error")

    # --- one round of everything (flush, shutdown)

    async def deliver_pending(self, deadline: float | None = None) -> FlushSummary:
        """Try every pending (segment, region) once now, backoff or not.

        Jobs already running are awaited too. At `deadline` (monotonic) unfinished jobs
        are cancelled; their segments stay in the spool for the next start.
        """
        summary = FlushSummary()
        self._summaries.append(summary)
        # Jobs start as slots free up, not all at once: after an outage tens of thousands
        # wait, and a task each would hold tens of MB while it waits for its slot.
        queues: dict[str, deque[Segment]] = {}
        for seg in self._spool.sealed_segments():
            for region in seg.pending_regions:
                queues.setdefault(region, deque()).append(seg)
        mine = set(self._inflight.values())  # jobs running now are awaited too
        try:
            while True:
                mine = {t for t in mine | self._start_queued(queues) if not t.done()}
                # slots held by jobs the background loop started meanwhile free up too
                full = {r for r, queue in queues.items() if queue}
                waiting = mine | {t for (_s, r), t in self._inflight.items() if r in full}
                if not waiting:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    for task in waiting:
                        task.cancel()
                    await asyncio.wait(waiting)
                    break
                await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._summaries.remove(summary)
        remaining = self._spool.segments()
        summary.remaining_segments = len(remaining)
        summary.remaining_bytes = sum(s.size for s in remaining)
        return summary

    def _start_queued(self, queues: dict[str, deque[Segment]]) -> set[asyncio.Task[None]]:
        """Start queued (segment, region) jobs while the region has free slots; returns
        them, and the running job of a queued pair (the background loop's), which is
        awaited, not started twice."""
        started: set[asyncio.Task[None]] = set()
        for region, queue in queues.items():
            while queue and self._inflight_in[region] < self._concurrency:
                seg = queue.popleft()
                running = self._inflight.get((seg.id, region))
                if running is not None:
                    started.add(running)
                elif region in seg.pending_regions:  # not delivered meanwhile
                    started.add(self._spawn(seg, region))
        return started

    async def aclose(self) -> None:
        """Cancel running jobs (their segments stay for the next start)."""
        tasks = [*self._inflight.values(), *self._probes.values()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
