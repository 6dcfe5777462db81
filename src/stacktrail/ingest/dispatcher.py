"""The dispatcher between the source and the sinks.

One task takes deliveries in arrival order: decode -> route -> one record per (trail,
sink) on a ticket. When a ticket finishes, the source settles the delivery (ack, or
dead-letter then ack). Sinks apply back-pressure by making `put` wait; the inbox never
holds more than the broker's prefetch window.

A message whose owner Keystone must be asked about first (a project not seen within the
owner cache's time) steps aside while it is asked: the messages behind it go on, and it
comes back through the inbox once answered. Waiting in line instead, each new project
paused the whole pipeline for one Keystone round trip (2,000 new projects against the
dev stack's one-thread Keystone: about 15 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from time import monotonic
from typing import Protocol

from stacktrail.domain.delivery import Outcome, Record, Sink, Ticket
from stacktrail.domain.event import DecodeError, NotAuditEvent
from stacktrail.domain.event_limits import DEFAULT_LIMITS, EventLimits
from stacktrail.ingest.consumer import AmqpSource, Delivery
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.garbage import tuned_collector
from stacktrail.ingest.owners import Owners, everywhere
from stacktrail.ingest.route import Router
from stacktrail.telemetry import metrics

log = logging.getLogger(__name__)


class _Answered:
    """A delivery back from the owner check (see the module's docstring)."""

    __slots__ = ("delivery",)

    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery


class IngestStats(Protocol):
    """Where the event-type catalogue and per-project hourly counts are kept."""

    async def record_event_types(self, counts: dict[str, int]) -> None: ...

    async def record_project_event_types(self, counts: dict[tuple[str, str], int]) -> None: ...

    async def record_ingest_many(self, counts: dict[tuple[str, datetime], int]) -> None: ...


class Pipeline:
    def __init__(
        self,
        source: AmqpSource,
        router: Router,
        sinks: Sequence[Sink],
        *,
        limits: EventLimits = DEFAULT_LIMITS,
        dead_letter_noise: bool = False,
        owners: Owners | None = None,
        gc_threshold: int = 0,
    ) -> None:
        self._source = source
        self._gc_threshold = gc_threshold
        self._router = router
        self._sinks = list(sinks)
        self._limits = limits
        self._dead_letter_noise = dead_letter_noise
        self._owners = owners
        self._inbox: asyncio.Queue[Delivery | _Answered] = asyncio.Queue()
        self._asking: set[asyncio.Task[None]] = set()  # deliveries at the owner check
        self._in_flight = 0
        self.event_types: Counter[str] = Counter()
        self.project_event_types: Counter[tuple[str, str]] = Counter()
        self.ingested: Counter[tuple[str, datetime]] = Counter()
        self._tick = -1.0
        self._now = self._hour = datetime.now(UTC)
        source.on_delivery = self._inbox.put_nowait
        metrics.INFLIGHT.set_function(lambda: self._in_flight)  # read when scraped

    def _clock(self) -> tuple[datetime, datetime]:
        """The ingest time and its clock hour, read at most once per millisecond.

        Records then share ingest times, so the search sink's stamp cache hits; a time at
        most a millisecond early is far inside the search-sourced delivery's settle delay.
        """
        tick = monotonic()
        if tick - self._tick >= 0.001:
            self._tick = tick
            now = datetime.now(UTC)
            self._now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._hour = now.replace(minute=0, second=0, microsecond=0)
        return self._now, self._hour

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def _finished(self, ticket: Ticket) -> None:
        self._in_flight -= 1
        delivery = ticket.tag
        assert isinstance(delivery, Delivery)
        reason = ticket.reason
        if ticket.outcome is Outcome.REJECTED and ticket.delivered:
            # Another sink (the archive, or search for another trail) kept a copy: the
            # dead letter says so, so a replay does not archive the event twice.
            reason = f"{reason} [{ticket.delivered} other sink copies were delivered]"
        self._source.settle(delivery, ticket.outcome, reason)

    async def run(self) -> None:
        """Dispatch deliveries until cancelled."""
        with tuned_collector(self._gc_threshold):  # start-up is over: what it built stays
            inbox = self._inbox
            while True:
                await self._dispatch_of(await inbox.get())

    async def drain(self) -> None:
        """Dispatch what is already in the inbox and what comes back from the owner check
        (after the consumer was cancelled)."""
        inbox = self._inbox
        while self._asking or not inbox.empty():
            if inbox.empty():
                await asyncio.wait(list(self._asking))
                continue
            await self._dispatch_of(inbox.get_nowait())

    def _dispatch_of(self, item: Delivery | _Answered) -> Coroutine[None, None, None]:
        """The dispatch of an inbox item (a plain call: no extra coroutine per message)."""
        if isinstance(item, _Answered):
            return self.dispatch(item.delivery, answered=True)
        return self.dispatch(item)

    async def dispatch(self, delivery: Delivery, *, answered: bool = False) -> None:
        """`answered`: the delivery is back from the owner check (counted in flight once)."""
        if not answered:
            self._in_flight += 1
        ticket = Ticket(delivery, self._finished, redelivered=delivery.redelivered)
        now, hour = self._clock()
        try:
            event = decode_message(delivery.body, limits=self._limits, now=now)
        except NotAuditEvent as exc:
            # Noise of the control exchanges, not poison: counted and acked (a setting
            # keeps dead-lettering it, e.g. to see what a new binding brings).
            if self._dead_letter_noise:
                ticket.outcome, ticket.reason = Outcome.REJECTED, f"undecodable: {exc.reason}"
            else:
                metrics.count_ignored(exc.event_type)
            ticket.seal()
            return
        except DecodeError as exc:
            ticket.outcome, ticket.reason = Outcome.REJECTED, f"undecodable: {exc.reason}"
            ticket.seal()
            return
        delivery.event_id = event.id
        try:
            trails = self._router.route(event)
            # a separate step: the owners Keystone knows (see ingest/owners.py)
            owners = self._owners
            if owners is None:
                placements = everywhere(trails)
            else:
                if not answered and (unanswered := owners.unanswered(trails)):
                    self._ask_aside(delivery, owners, unanswered)
                    return  # this ticket goes unused: the delivery is dispatched again
                placements = await owners.place(event, trails)
            if placements:
                delivery.project_id = placements[0].project_id
            event_type = event.event_type or event.action
            self.event_types[event_type] += 1
            # tenant_ids of the shared layout: every project whose search copy this is
            tenants = tuple(
                [
                    p.project_id
                    for p in placements
                    if p.trail.search_enabled and (p.only is None or p.only == "search")
                ]
            )
            for placement in placements:
                project_id = placement.project_id
                if placement.counted:
                    self.ingested[(project_id, hour)] += 1
                    self.project_event_types[(project_id, event_type)] += 1
                # One record serves every sink: it is plain data, each sink resolves it once.
                record = Record(project_id, event, placement.trail, now, ticket, tenants)
                only = placement.only
                for sink in self._sinks:
                    if (only is None or sink.name == only) and sink.wants(record):
                        ticket.add()
                        await _put(sink, record)
            # Every sink has encoded what it keeps: the parsed body need not wait with them.
            event.compact()
        except Exception as exc:  # a bug must not lose the message: dead-letter it
            log.exception("dispatching event %s failed", event.id, extra={"event_id": event.id})
            ticket.outcome, ticket.reason = Outcome.REJECTED, f"internal error: {exc!r}"
        ticket.seal()

    def _ask_aside(self, delivery: Delivery, owners: Owners, project_ids: list[str]) -> None:
        async def ask() -> None:
            try:
                for project_id in project_ids:
                    # a failure here fails again in `place`, which dead-letters the message
                    with contextlib.suppress(Exception):
                        await owners.kind(project_id)
            finally:
                self._inbox.put_nowait(_Answered(delivery))

        task = asyncio.create_task(ask())
        self._asking.add(task)
        task.add_done_callback(self._asking.discard)

    async def flush_stats(self, stats: IngestStats) -> None:
        """Hand the counters gathered since the last call to the store."""
        event_types, self.event_types = self.event_types, Counter()
        ingested, self.ingested = self.ingested, Counter()
        by_project, self.project_event_types = self.project_event_types, Counter()
        if event_types:
            await stats.record_event_types(dict(event_types))
        if by_project:
            await stats.record_project_event_types(dict(by_project))
        if ingested:
            await stats.record_ingest_many(dict(ingested))


async def _put(sink: Sink, record: Record) -> None:
    """Hand a counted record to a sink; if the sink raises, the record is resolved here.

    A sink that raises from `put` has not taken the record (see `Sink.put`), so the
    ticket would otherwise wait for it forever and its message would never be settled.
    """
    try:
        await sink.put(record)
    except Exception as exc:
        log.exception(
            "%s sink failed to take event %s",
            sink.name,
            record.event.id,
            extra={"event_id": record.event.id, "project_id": record.project_id},
        )
        record.resolve(Outcome.REJECTED, f"internal error: {sink.name} sink: {exc!r}"[:500])
