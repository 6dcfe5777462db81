"""What every sink shares: records, the per-message ticket, outcomes, the sink interface.

A source message becomes one ticket; each (project, sink) copy of its event is a record
holding that ticket. A sink resolves each record exactly once, with DELIVERED (durable:
a successful bulk item, an fsync'ed spool record) or REJECTED (permanently refused, with
a reason). Transient failures are retried inside the sink and never resolve a record, so
the message is never acked early. When the last record of a sealed ticket resolves, the
worst outcome decides: all delivered -> ack; any rejected -> dead-letter, then ack.
A sink whose writes a redelivery would repeat (the archive) may hold its record until
every other record of the ticket is resolved (`Ticket.hold`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Protocol

from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import Trail


class Outcome(IntEnum):
    """Ordered by severity: the worst outcome of a message's records decides its fate."""

    DELIVERED = 0
    RETRY = 1  # only at shutdown: not delivered yet, leave the message to be redelivered
    REJECTED = 2


class Ticket:
    """Tracks the records one source message produced until all are resolved."""

    __slots__ = (
        "_held",
        "_on_done",
        "_pending",
        "_sealed",
        "delivered",
        "outcome",
        "reason",
        "redelivered",
        "tag",
    )

    def __init__(
        self, tag: object, on_done: Callable[[Ticket], None], *, redelivered: bool = False
    ) -> None:
        self.tag = tag
        # The source delivered this message before (it went back to the queue unacked):
        # a sink that already made its record durable skips it.
        self.redelivered = redelivered
        self.delivered = 0  # records resolved DELIVERED: a dead letter says they were kept
        self._on_done = on_done
        self._pending = 0
        self._sealed = False
        self._held: list[Callable[[], None]] | None = None
        self.outcome = Outcome.DELIVERED
        self.reason = ""

    @property
    def done(self) -> bool:
        return self._sealed and self._pending == 0

    def add(self, count: int = 1) -> None:
        if self._sealed:
            raise RuntimeError("records added to a sealed ticket")
        self._pending += count

    def hold(self, release: Callable[[], None]) -> None:
        """A sink holds one of this ticket's records back: `release` is called once every
        record but the held ones is resolved (and the ticket is sealed). The archive takes
        its record only then, so a durable copy waits for nothing but the ack."""
        if self._held is None:
            self._held = []
        self._held.append(release)

    def _release_held(self) -> None:
        held = self._held
        if held is not None and self._sealed and self._pending == len(held):
            self._held = None
            for release in held:
                release()

    def seal(self) -> None:
        """No more records will be added; a ticket with none pending finishes now."""
        self._sealed = True
        if self._held is not None:
            self._release_held()  # held records are pending: resolve() finishes the ticket
            return
        if self._pending == 0:
            self._on_done(self)

    def resolve(self, outcome: Outcome, reason: str = "") -> None:
        if self._pending <= 0:
            raise RuntimeError("ticket resolved more often than records were added")
        if outcome is Outcome.DELIVERED:
            self.delivered += 1
        if outcome > self.outcome:
            self.outcome = outcome
            self.reason = reason
        self._pending -= 1
        if self._held is not None:
            self._release_held()
        elif self._pending == 0 and self._sealed:
            self._on_done(self)


@dataclass(slots=True)
class Record:
    """One copy of an event for one project's trail, on its way into the sinks that want it.

    Every sink resolves it once; the ticket counts one pending resolution per sink.
    """

    project_id: str
    event: AuditEvent
    trail: Trail
    ingested_at: datetime
    ticket: Ticket
    # every project whose trail took the event and searches it, owner first (the shared
    # search layout writes one document per event, visible to these); () -> project_id
    tenants: tuple[str, ...] = ()

    def resolve(self, outcome: Outcome, reason: str = "") -> None:
        self.ticket.resolve(outcome, reason)


class Sink(Protocol):
    name: str

    async def start(self) -> None:
        """Connect, install templates, recover local state."""
        ...

    async def put(self, record: Record) -> None:
        """Take a record; may wait (back-pressure) but never drops it.

        Raising means the record was not taken and is not resolved (the dispatcher then
        resolves it REJECTED); once taken, the sink resolves it whatever happens.
        """
        ...

    async def stop(self, grace: float) -> None:
        """Finish what is in flight within `grace` seconds; unresolved records get RETRY."""
        ...

    def wants(self, record: Record) -> bool:
        """Whether this record's trail sends events to this sink."""
        ...
