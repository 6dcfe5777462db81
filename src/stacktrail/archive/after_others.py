"""The archive takes a message's records last: once every other sink holds the message.

A message is acked when every sink holds it. Search writes are idempotent (a `create`
by event id), archive writes are not: a record durable in this worker's spool whose
message goes back to the queue (kill -9, a lost connection) is archived again by whichever
worker gets the redelivery; the spool's seen ids (archive/spool/seen.py) catch it only
when that is the same worker. Taking the archive's record only after the message's other
records resolved shrinks "durable here but not acked" from the whole wait for search to
the few milliseconds between the spool's group commit and the ack, so with several
workers on one queue a kill -9 leaves hardly any duplicates for the other workers.

The wrapped sink keeps its back-pressure: the records it is handed wait in order for its
`put`, and a message stays unacked (holding its place in the prefetch window) until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from stacktrail.domain.delivery import Outcome, Record, Sink

log = logging.getLogger(__name__)


class AfterOtherSinks:
    """Implements `Sink` around another sink that it feeds records last (see above)."""

    def __init__(self, inner: Sink) -> None:
        self.name = inner.name
        self.inner = inner
        self._ready: deque[Record] = deque()  # released, not yet taken by the inner sink
        self._wake = asyncio.Event()
        self._held = 0  # handed to put, not yet released
        self._released = asyncio.Event()  # set whenever nothing is held
        self._released.set()
        self._idle = asyncio.Event()  # set whenever the inner sink took everything released
        self._idle.set()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.inner.start()
        self._task = asyncio.create_task(self._feed(), name=f"{self.name}-after-others")

    def wants(self, record: Record) -> bool:
        return self.inner.wants(record)

    async def put(self, record: Record) -> None:
        if self._closed:
            record.resolve(Outcome.RETRY, f"{self.name} sink is stopping")
            return
        self._held += 1
        self._released.clear()
        record.ticket.hold(lambda: self._release(record))

    def _release(self, record: Record) -> None:
        self._held -= 1
        if not self._held:
            self._released.set()
        if self._closed:
            record.resolve(Outcome.RETRY, f"{self.name} sink stopped before the record was taken")
            return
        self._ready.append(record)
        self._idle.clear()
        self._wake.set()

    async def _feed(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ready:
                record = self._ready.popleft()
                try:
                    await self.inner.put(record)
                except asyncio.CancelledError:  # stopping: `put` did not take it
                    record.resolve(Outcome.RETRY, f"{self.name} sink is stopping")
                    raise
                except Exception as exc:  # as the dispatcher does for a sink's put
                    log.exception("%s sink failed to take event %s", self.name, record.event.id)
                    record.resolve(
                        Outcome.REJECTED, f"internal error: {self.name} sink: {exc!r}"[:500]
                    )
            self._idle.set()

    async def stop(self, grace: float) -> None:
        """Wait (within `grace`) for the other sinks to settle what is held, hand it to the
        inner sink, then stop that with the time left."""
        deadline = time.monotonic() + grace
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._released.wait()
                await self._idle.wait()
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._ready:
            self._ready.popleft().resolve(Outcome.RETRY, f"{self.name} sink is stopping")
        await self.inner.stop(max(deadline - time.monotonic(), 0.1))
