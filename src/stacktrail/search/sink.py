"""Search sink: batches records into `_bulk` requests with bounded concurrency.

Back-pressure: at most `search_max_inflight` bulk requests are in flight; while they all
wait (search slow or down, retrying), `put` waits, the dispatcher stops taking messages,
the unacked messages reach the prefetch limit and the broker stops delivering.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from stacktrail.config import Settings
from stacktrail.domain.backoff import Backoff, Recovery
from stacktrail.domain.delivery import Outcome, Record
from stacktrail.domain.errors import PermanentError, TransientError
from stacktrail.domain.stalls import Stalled, StallWatch
from stacktrail.search.client import ACCEPTED, SearchClient
from stacktrail.search.documents import PENDING, BulkEncoder, SearchLayout, index_template_body
from stacktrail.telemetry import metrics
from stacktrail.telemetry.repeats import Repeats

log = logging.getLogger(__name__)

Entry = tuple[bytes, Record]

RECOVERY_PROBE_INTERVAL = 0.5  # seconds between pings while batches wait to retry
STALL_AFTER = 1.0  # seconds a bulk request waits before pings check that search still answers
TEMPLATE_FIRST_WAIT = 5.0  # seconds start waits for the template before going on


class SearchSink:
    name = "search"

    def __init__(self, client: SearchClient, settings: Settings) -> None:
        self._layout = SearchLayout.from_settings(settings)
        self._encoder = BulkEncoder(self._layout)
        self._client = client
        self._max_docs = settings.search_bulk_docs
        self._max_bytes = settings.search_bulk_bytes
        self._flush_interval = settings.search_flush_interval.total_seconds()
        self._slots = asyncio.Semaphore(settings.search_max_inflight)
        self._batch: list[Entry] = []
        self._batch_bytes = 0
        self._batch_started = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._installer: asyncio.Task[None] | None = None
        self._template_ready = asyncio.Event()  # unset only while `start` installs it
        self._template_ready.set()
        self._stopped = asyncio.Event()
        # Shared by every batch in retry: the first bulk that goes through (or a ping while
        # they wait) ends all their delays, so indexing resumes right after an outage.
        self._recovery = Recovery(client.ping, RECOVERY_PROBE_INTERVAL)
        # Requests swallowed by a silent search (no reset, only timeouts notice) are
        # resent once it answers pings again, not after `search_timeout`.
        self._stalls = StallWatch(client.ping, after=STALL_AFTER, interval=RECOVERY_PROBE_INTERVAL)
        self._unreachable = False
        self._unreachable_log = Repeats(log, "search: bulk requests fail, retrying")

    def wants(self, record: Record) -> bool:
        return record.trail.search_enabled

    async def start(self) -> None:
        """Install the index template; if search is not up yet, keep trying in the
        background: bulk requests wait for it, while the process consumes (the archive
        takes its copies) and still answers SIGTERM."""
        self._template_ready = asyncio.Event()
        self._installer = asyncio.create_task(self._install_template(), name="search-template")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TEMPLATE_FIRST_WAIT):
                await self._template_ready.wait()
        self._flusher = asyncio.create_task(self._flush_loop(), name="search-flush")

    async def _install_template(self) -> None:
        backoff = Backoff(cap=10.0)
        body = index_template_body(self._layout)
        name = self._layout.template_name
        errors = Repeats(log, "search not ready: the index template is not installed yet")
        while True:
            try:
                await self._client.put_index_template(name, body)
                break
            except TransientError as exc:
                errors.failed(str(exc))
                await self._recovery.wait(backoff.next_delay())
        errors.recovered()
        log.info("search sink ready: index template %r installed", name)
        self._template_ready.set()

    async def put(self, record: Record) -> None:
        if self._layout.shared and record.tenants and record.project_id != record.tenants[0]:
            # one document per event: the owner's record writes it, for every tenant
            record.resolve(Outcome.DELIVERED)
            return
        try:
            line = self._encoder.lines(record)
        except Exception as exc:  # decode's limits should make this unreachable
            log.exception("cannot encode event %s for search", record.event.id)
            metrics.SEARCH_REJECTED.inc()
            record.resolve(Outcome.REJECTED, f"search: cannot encode the event: {exc}"[:500])
            return
        if not self._batch:
            self._batch_started = time.monotonic()
        self._batch.append((line, record))
        self._batch_bytes += len(line)
        if len(self._batch) >= self._max_docs or self._batch_bytes >= self._max_bytes:
            await self._dispatch()

    async def _dispatch(self) -> None:
        if not self._batch:
            return
        # The slot first: while every slot retries (search down), the batch stays here,
        # where `stop` can still resolve it.
        await self._slots.acquire()
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if not batch:
            self._slots.release()
            return
        task = asyncio.create_task(self._send(batch), name="search-bulk")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.error("bulk task failed", exc_info=task.exception())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval / 2)
            if self._batch and time.monotonic() - self._batch_started >= self._flush_interval:
                await self._dispatch()

    async def _send(self, batch: list[Entry]) -> None:
        pending = batch
        backoff = Backoff()
        try:
            await self._template_ready.wait()  # no document before its mapping
            while pending:
                before = len(pending)
                self._unreachable = False
                pending = await self._attempt(pending)
                if len(pending) < before:
                    backoff.reset()  # search took some: the next retry is a short one
                if pending:
                    # Probe only an unreachable search; one that throttles answers pings.
                    await self._recovery.wait(backoff.next_delay(), probe=self._unreachable)
        except asyncio.CancelledError:
            for _, record in pending:
                record.resolve(Outcome.RETRY, "shutdown before search confirmed")
            raise

    async def _attempt(self, pending: list[Entry]) -> list[Entry]:
        """One bulk request; returns the entries to retry. Never raises (but on cancel):
        an unexpected error resolves the entries REJECTED, so no record waits forever."""
        try:
            return await self._bulk_once(pending)
        except Exception as exc:  # a bug or an odd answer from the server
            log.exception("bulk of %d documents failed unexpectedly", len(pending))
            metrics.SEARCH_REJECTED.inc(len(pending))
            for _, record in pending:
                record.resolve(Outcome.REJECTED, f"internal error: search sink: {exc!r}"[:500])
            return []

    async def _bulk_once(self, pending: list[Entry]) -> list[Entry]:
        body = b"".join(line for line, _ in pending)
        try:
            with metrics.SEARCH_BULK_SECONDS.time():
                items = await self._stalls.run(self._client.bulk(body, len(pending)))
        except TransientError as exc:
            metrics.SEARCH_BULK_ERRORS.inc()
            metrics.SEARCH_RETRIES.inc()
            if isinstance(exc, Stalled):
                metrics.SEARCH_STALLED.inc()
            self._unreachable = True
            self._unreachable_log.failed(str(exc))
            return pending
        except PermanentError as exc:
            metrics.SEARCH_BULK_ERRORS.inc()
            if exc.status == 413 and len(pending) > 1:
                half = len(pending) // 2
                return await self._attempt(pending[:half]) + await self._attempt(pending[half:])
            for _, record in pending:
                record.resolve(Outcome.REJECTED, f"search refused the bulk request: {exc}")
            metrics.SEARCH_REJECTED.inc(len(pending))
            return []
        if items and items[0] is ACCEPTED and all(item is ACCEPTED for item in items):
            return self._accepted(pending)  # the common answer, without a look per item
        # Every outcome is known before any record resolves: if this raises, `_attempt`
        # resolves the whole of `pending` and none twice.
        retry: list[Entry] = []
        done: list[Entry] = []
        refused: list[tuple[Record, str]] = []
        conflicts: list[tuple[Entry, str]] = []
        for entry, item in zip(pending, items, strict=True):
            if item.status == 409 and entry[1].event.outcome != PENDING:
                conflicts.append((entry, item.index))
            elif item.delivered:
                done.append(entry)
            elif item.transient:
                retry.append(entry)
            else:
                refused.append((entry[1], f"search rejected the document: {item.error}"))
        for entry, index in conflicts:
            (retry if await self._delete_pending(entry[1], index) else done).append(entry)
        self._unreachable_log.recovered()
        if done or refused:
            self._recovery.succeeded()  # search took documents: waiting batches retry now
        for _, record in done:
            record.resolve(Outcome.DELIVERED)
        metrics.SEARCH_INDEXED.inc(len(done))
        if refused:
            retry += await self._index_reduced(refused)
        if retry:
            metrics.SEARCH_RETRIES.inc()
            log.warning(
                "%d of %d documents throttled or failed, will retry", len(retry), len(pending)
            )
        return retry

    def _accepted(self, pending: list[Entry]) -> list[Entry]:
        """Search took every document of the bulk."""
        self._unreachable_log.recovered()
        self._recovery.succeeded()
        for _, record in pending:
            record.resolve(Outcome.DELIVERED)
        metrics.SEARCH_INDEXED.inc(len(pending))
        return []

    async def _delete_pending(self, record: Record, index: str) -> bool:
        """A final event's `create` met a document: if that is the pending request,
        delete it (only if unchanged since read) and return True (create again); False
        when it is final (a replay, or another final event with the id: the first stays).
        A search error counts as True: the create is retried, and this asked again."""
        doc_id = record.event.id
        try:
            stored = await self._client.get_document(index or self._encoder.index(record), doc_id)
            if stored is None:
                return True  # gone meanwhile: create again
            if stored.source.get("outcome") != PENDING:
                return False
            await self._client.delete_document(stored, doc_id)
        except TransientError as exc:
            log.warning("cannot replace the pending event %s yet: %s", doc_id, exc)
        return True

    async def _index_reduced(self, refused: list[tuple[Record, str]]) -> list[Entry]:
        """Index reduced copies of refused documents (the CADF core plus the event as a
        string, see `reduced_document`): one odd field does not make an event a poison
        message while the archive keeps it whole. Returns the copies to retry."""
        entries: list[Entry] = []
        reasons: dict[int, str] = {}
        for record, reason in refused:
            try:
                entries.append((self._encoder.reduced_lines(record), record))
                reasons[id(record)] = reason
            except Exception as exc:  # an event the encoder took cannot fail here
                metrics.SEARCH_REJECTED.inc()
                record.resolve(Outcome.REJECTED, f"{reason}; reduced copy: {exc!r}"[:2000])
        if not entries:
            return []
        try:
            items = await self._client.bulk(b"".join(line for line, _ in entries), len(entries))
        except TransientError:
            return entries  # retried as reduced copies with the batch
        except Exception as exc:  # refused (or an odd answer): these are dead-lettered
            items = None
            failure = str(exc)
        retry: list[Entry] = []
        for n, (line, record) in enumerate(entries):
            item = items[n] if items is not None else None
            if item is not None and item.delivered:
                metrics.SEARCH_INDEXED.inc()
                metrics.SEARCH_REDUCED.inc()
                log.info(
                    "event %s indexed as a reduced copy: %s", record.event.id, reasons[id(record)]
                )
                record.resolve(Outcome.DELIVERED)
            elif item is not None and item.transient:
                retry.append((line, record))
            else:
                why = item.error if item is not None else failure
                metrics.SEARCH_REJECTED.inc()
                record.resolve(
                    Outcome.REJECTED, f"{reasons[id(record)]}; the reduced copy too: {why}"[:2000]
                )
        return retry

    async def stop(self, grace: float) -> None:
        """Send what is batched and wait up to `grace` s; the rest resolves RETRY."""
        if self._flusher is not None:
            self._flusher.cancel()
        if self._installer is not None:
            self._installer.cancel()
        try:
            async with asyncio.timeout(grace):
                await self._dispatch()
        except TimeoutError:  # every slot busy retrying: no room for the last batch
            batch, self._batch, self._batch_bytes = self._batch, [], 0
            for _, record in batch:
                record.resolve(Outcome.RETRY, "shutdown before search confirmed")
        if self._tasks:
            _, still = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in still:
                task.cancel()
            if still:
                log.warning(
                    "%d bulk requests unfinished at shutdown; left for redelivery", len(still)
                )
                await asyncio.gather(*still, return_exceptions=True)
        await self._stalls.close()
        await self._client.close()
