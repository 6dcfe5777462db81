"""RabbitMQ source: consume, settle (ack / dead-letter), reconnect.

Runs on pika's asyncio adapter (see source/amqp.py for why pika).

Every delivery carries the generation of the connection it came on. After a reconnect
the broker redelivers whatever was unacked; settling a delivery of an older generation
does nothing, so a tag is never acked on the wrong channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
from pika.spec import Basic

from stacktrail.config import QueueMode, Settings
from stacktrail.domain.backoff import Backoff
from stacktrail.domain.delivery import Outcome
from stacktrail.ingest.acks import AckTracker
from stacktrail.ingest.amqp import AmqpChannel, AmqpConnection, AmqpError
from stacktrail.ingest.topology import Declared, Topology, declare
from stacktrail.telemetry import metrics
from stacktrail.telemetry.logging import describe
from stacktrail.telemetry.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

REASON_HEADER = "x-stacktrail-reason"
METRICS_INTERVAL = 1.0  # seconds between updates of the consumed counter while idle
RECONNECT_PROBE_INTERVAL = 0.5  # seconds between TCP probes of a broker that went away


@dataclass(slots=True)
class Delivery:
    body: bytes
    tag: int
    generation: int
    exchange: str
    routing_key: str
    headers: dict[str, Any] = field(default_factory=dict)
    # known once decoded, for the log lines about this message
    event_id: str | None = None
    project_id: str | None = None
    redelivered: bool = False  # the broker delivered it before (to us or another consumer)


def redact(url: str) -> str:
    """The broker URL without its password, for logs."""
    parsed = urlsplit(url)
    if not parsed.password:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return urlunsplit(parsed._replace(netloc=netloc))


class AmqpSource:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        parameters = pika.URLParameters(settings.amqp_url)
        self._address = (parameters.host, parameters.port)
        self._topology = Topology.from_settings(settings)
        self._dropped = RateLimitedLog(log, interval=60.0)
        self._generation = 0
        self._connection: AmqpConnection | None = None
        self._channel: AmqpChannel | None = None
        self._publisher: AmqpChannel | None = None
        self._consumer_tag: str | None = None
        self._tracker = AckTracker()
        # (tag, receive time) of the unacked deliveries, oldest first; acked ones leave
        # from the head after each ack round, so the head is the oldest one still waiting.
        self._received: deque[tuple[int, float]] = deque()
        self._pending_dead: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._consuming = True
        self._consumed = 0  # counted here, added to the metric once per ack round
        self._ack_delay = settings.amqp_ack_interval.total_seconds()
        self._ack_due: asyncio.Handle | None = None  # the ack round already scheduled
        # Finished messages behind an unfinished one wait for it (one multiple frame later)
        # at most this long, or until they fill half the prefetch window; then singly.
        self._gap_hold = settings.amqp_ack_gap_hold.total_seconds()
        self._gap_max = max(1, settings.amqp_prefetch // 2)
        self._gap_since: float | None = None  # since when finished messages wait so
        self._gap_due: asyncio.TimerHandle | None = None
        self.left_unacked = 0  # at close: deliveries the broker gets back for redelivery
        self.on_delivery: Callable[[Delivery], None] = lambda d: None
        # True once a probe found the broker unreachable since the last connection: its
        # next answer ends the reconnect delay (see `_pause`)
        self._unreachable = False
        metrics.OLDEST_UNACKED_AGE.set_function(self.oldest_unacked_age)

    def oldest_unacked_age(self) -> float:
        """Seconds the oldest consumed, not yet acked message has waited (0: none waits).

        Grows while one message is never settled, however many after it finish: the
        signal that acks stalled (readiness).
        """
        received = self._received
        return monotonic() - received[0][1] if received else 0.0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected and consuming until `stop` is set; reconnect with backoff."""
        backoff = Backoff(first=0.5, cap=self._settings.amqp_reconnect_max.total_seconds())
        where = redact(self._settings.amqp_url)
        while not stop.is_set():
            try:
                declared = await self._connect()
                backoff.reset()
                self._unreachable = False
                self._log_topology(declared, where)
                await self._hold(stop)
            except (AmqpError, OSError, TimeoutError) as exc:
                self._lost()
                delay = backoff.next_delay()
                log.warning(
                    "RabbitMQ at %s: %s; reconnecting in %.1f s (or once it answers again)",
                    where,
                    describe(exc),
                    delay,
                )
                await self._pause(stop, delay)

    async def _pause(self, stop: asyncio.Event, delay: float) -> None:
        """Wait up to `delay` s before the next connection attempt; end early on stop or
        when the broker, found unreachable meanwhile, accepts TCP connections again.

        A broker that answers but refuses us (credentials, vhost) never was unreachable:
        its attempts keep the whole backoff instead of one every probe interval."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not stop.is_set() and (left := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(RECONNECT_PROBE_INTERVAL, left)):
                    await stop.wait()
            if stop.is_set() or deadline - loop.time() <= RECONNECT_PROBE_INTERVAL:
                continue  # the attempt is due anyway
            if await self._broker_answers():
                if self._unreachable:
                    return
            else:
                self._unreachable = True

    async def _broker_answers(self) -> bool:
        """Whether the broker's address accepts a TCP connection (closed at once)."""
        host, port = self._address
        try:
            async with asyncio.timeout(RECONNECT_PROBE_INTERVAL):
                _reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _log_topology(self, declared: Declared, where: str) -> None:
        topology = self._topology
        bindings = ", ".join(f"{e}:{k}" for e, k in topology.bindings) or "none"
        log.info(
            "consuming %s on %s: %s; bindings: %s; dead letters to %s (at most %d messages, "
            "%d bytes)",
            topology.queue,
            where,
            declared.how,
            bindings if topology.mode is QueueMode.OWN else "none (the producers bind it)",
            topology.dead_letter_exchange,
            topology.dead_letter_max_length,
            topology.dead_letter_max_bytes,
        )
        if declared.missing_exchanges:
            log.warning(
                "configured exchanges missing on the broker (no producer has declared them "
                "yet; declared as oslo.messaging would, durable=%s): %s",
                topology.durable,
                ", ".join(declared.missing_exchanges),
            )

    async def _count_dropped_dead_letters(self, channel: AmqpChannel) -> None:
        """Drain the overflow queue: each message is a dead letter the bound pushed out."""

        def dropped(
            _channel: object, _method: Basic.Deliver, properties: pika.BasicProperties, _: bytes
        ) -> None:
            headers = properties.headers or {}
            reason = str(headers.get("x-first-death-reason", "maxlen"))[:20]
            metrics.DEAD_LETTERS_DROPPED.labels(reason=reason).inc()
            self._dropped.warning(
                "dead-letter queue %s is full: dropped its oldest dead letters (%s)",
                self._topology.dead_letter_exchange,
                reason,
            )

        await channel.call(
            channel.raw.basic_consume, self._topology.overflow_queue, dropped, auto_ack=True
        )

    async def _connect(self) -> Declared:
        connection = await AmqpConnection.open(self._settings.amqp_url)
        try:
            declared = await declare(connection, self._topology)
            channel = await connection.channel()
            await channel.call(channel.raw.basic_qos, prefetch_count=self._settings.amqp_prefetch)
            await self._count_dropped_dead_letters(await connection.channel())
            publisher = await connection.channel()
            await publisher.enable_confirms()
        except BaseException:
            await connection.close()
            raise
        self._generation += 1
        self._tracker = AckTracker()
        self._gap_since = None
        self._received = deque()
        self._connection, self._channel, self._publisher = connection, channel, publisher
        self._connected.set()
        metrics.AMQP_CONNECTED.set(1)
        if self._consuming:
            await self._consume()
        return declared

    async def _consume(self) -> None:
        assert self._channel is not None
        generation = self._generation
        deliver = self.on_delivery
        received = self._received

        def receive(
            _channel: object, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
        ) -> None:
            self._consumed += 1
            received.append((method.delivery_tag, monotonic()))
            deliver(
                Delivery(
                    body=body,
                    tag=method.delivery_tag,
                    generation=generation,
                    exchange=method.exchange or "",
                    routing_key=method.routing_key or "",
                    headers=properties.headers or {},
                    redelivered=bool(method.redelivered),
                )
            )

        channel = self._channel
        ok = await channel.call(channel.raw.basic_consume, self._settings.amqp_queue, receive)
        self._consumer_tag = ok.method.consumer_tag

    async def _hold(self, stop: asyncio.Event) -> None:
        """Wait for stop or a lost connection; acks are sent as messages finish (see
        `_ack_soon`), this loop only publishes the consumed count now and then."""
        assert self._connection is not None
        assert self._channel is not None
        interval = METRICS_INTERVAL
        lost: tuple[asyncio.Future[AmqpError], ...] = (
            self._connection.closed,
            self._channel.closed,
        )
        stopped: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                for future in lost:
                    if future.done():
                        raise future.result()
                await self.flush_acks()
                waiting: list[asyncio.Future[Any]] = [stopped, *lost]
                await asyncio.wait(waiting, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    def _lost(self) -> None:
        if self._connection is not None:
            closing = asyncio.ensure_future(self._connection.close())
            self._pending_dead.add(closing)
            closing.add_done_callback(self._pending_dead.discard)
        self._connected.clear()
        metrics.AMQP_CONNECTED.set(0)
        self._connection = self._channel = self._publisher = None
        self._consumer_tag = None
        self._received = deque()  # the broker redelivers these; they wait in the queue

    def settle(self, delivery: Delivery, outcome: Outcome, reason: str = "") -> None:
        """Called once per delivery when its fate is known."""
        if delivery.generation != self._generation or self._channel is None:
            return  # came on a lost connection; the broker redelivers it
        if outcome is Outcome.DELIVERED:
            self._tracker.done(delivery.tag)
            self._ack_soon()
        elif outcome is Outcome.REJECTED:
            task = asyncio.create_task(self._dead_letter(delivery, reason))
            self._pending_dead.add(task)
            task.add_done_callback(self._pending_dead.discard)
        # RETRY: left unacked on purpose; redelivered after the channel closes.

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        kind = reason.split(":", 1)[0][:60]
        headers = dict(delivery.headers)
        headers.update(
            {
                REASON_HEADER: reason[:2000],
                "x-stacktrail-exchange": delivery.exchange,
                "x-stacktrail-routing-key": delivery.routing_key,
                "x-stacktrail-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        try:
            confirmed = await publisher.publish_confirmed(
                self._settings.amqp_dead_letter_exchange,
                self._settings.amqp_queue,
                delivery.body,
                pika.BasicProperties(headers=headers, delivery_mode=2),
            )
        except AmqpError as exc:
            log.warning("dead-lettering failed (%s); the message will be redelivered", exc)
            return
        if not confirmed:
            log.warning("broker refused the dead letter; the message will be redelivered")
            return
        metrics.DEAD_LETTERED.labels(kind=kind).inc()
        log.warning(
            "dead-lettered message (%s:%s) of event %s, project %s: %s",
            delivery.exchange,
            delivery.routing_key,
            delivery.event_id or "(unknown)",
            delivery.project_id or "(unknown)",
            reason[:300],
            extra={"event_id": delivery.event_id, "project_id": delivery.project_id},
        )
        if delivery.generation == self._generation:
            self._tracker.done(delivery.tag)
            self._ack_soon()

    def _ack_soon(self) -> None:
        """Schedule one ack round for what finishes now: a bulk response or a spool
        commit finishes hundreds of messages in one step, and they share one frame.

        Acking at once matters for throughput: the broker sends the next messages of
        the prefetch window only when the previous ones are acked, so any ack delay is
        time the whole pipeline waits."""
        if self._ack_due is None:
            loop = asyncio.get_running_loop()
            if self._ack_delay > 0:
                self._ack_due = loop.call_later(self._ack_delay, self._ack_round)
            else:
                self._ack_due = loop.call_soon(self._ack_round)

    def _ack_round(self) -> None:
        self._ack_due = None
        self._send_acks()

    def _gap_round(self) -> None:
        self._gap_due = None
        self._send_acks()

    async def flush_acks(self, everything: bool = False) -> None:
        """Ack what is finished now; `everything`: also the messages behind an
        unfinished one, however briefly they waited (at close)."""
        self._send_acks(everything)

    def _beyond_gap_now(self, tracker: AckTracker, everything: bool) -> bool:
        """Whether the finished messages behind an unfinished one are acked singly now.

        A message finishing late by milliseconds (bulks answered out of order, a dead
        letter awaiting its confirm) would otherwise cost a frame per message behind it;
        one held for long (a batch in retry) must not hold the rest, nor the window."""
        waiting = tracker.waiting
        if not waiting:
            self._gap_since = None
            return False
        now = monotonic()
        if self._gap_since is None:
            self._gap_since = now
        if everything or waiting >= self._gap_max or now - self._gap_since >= self._gap_hold:
            self._gap_since = None
            return True
        if self._gap_due is None:
            delay = self._gap_since + self._gap_hold - now
            self._gap_due = asyncio.get_running_loop().call_later(delay, self._gap_round)
        return False

    def _send_acks(self, everything: bool = False) -> None:
        if self._consumed:
            metrics.CONSUMED.inc(self._consumed)
            self._consumed = 0
        channel = self._channel
        if channel is None or not channel.is_open:
            return
        # The prefix as one multiple=True frame; finished tags beyond an unfinished one
        # singly once they waited long enough (see `_beyond_gap_now`), so one message in
        # retry never holds the prefetch window full.
        tracker = self._tracker
        done = tracker.take_prefix_round()
        if self._beyond_gap_now(tracker, everything):
            done.singles = tracker.take_rest()
            done.count += len(done.singles)
        if done.upto is not None:
            channel.raw.basic_ack(done.upto, multiple=True)
        for tag in done.singles:
            channel.raw.basic_ack(tag)

        if done.count:
            metrics.ACKED.inc(done.count)
            received = self._received
            while received and tracker.acked(received[0][0]):
                received.popleft()

    @property
    def unacked(self) -> int:
        """Deliveries of the current connection not acked (yet): the broker redelivers
        them if the connection closes now."""
        return len(self._received) - sum(
            1 for tag, _t in self._received if self._tracker.acked(tag)
        )

    async def stop_consuming(self) -> None:
        """Stop taking new messages; in-flight ones can still be settled."""
        self._consuming = False
        channel = self._channel
        if channel is not None and self._consumer_tag and channel.is_open:
            try:
                await channel.call(channel.raw.basic_cancel, self._consumer_tag)
            except AmqpError as exc:
                log.warning("could not cancel the consumer: %s", exc)

    async def close(self) -> None:
        """Wait for dead letters, ack what is finished, close; the rest is redelivered."""
        if self._pending_dead:
            await asyncio.wait(set(self._pending_dead), timeout=10)
        await self.flush_acks(everything=True)
        self.left_unacked = self.unacked if self._channel is not None else 0
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._lost()
