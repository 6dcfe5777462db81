"""Queue, bindings and dead-letter exchange the pipeline needs on the broker.

Two sources: stacktrail's own durable queue bound to the producers' exchanges (`own`),
or a queue the producers declare themselves, consumed as it is (`existing`, e.g. oslo's
`notifications.info`, non-durable; SAP's Go services publish raw CADF straight into it
through the default exchange). Whatever exists already is never redeclared with other
properties: that fails for both sides (PRECONDITION_FAILED closes the channel).

The dead-letter queue is bounded (length, bytes, optional TTL). RabbitMQ drops the
oldest dead letters beyond the bound and dead-letters those to `<dlx>.overflow`, a tiny
queue the source drains to count and report what was dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from stacktrail.config import QueueMode, Settings
from stacktrail.ingest.amqp import AmqpChannel, AmqpConnection, AmqpError

log = logging.getLogger(__name__)

NOT_FOUND = 404
PRECONDITION_FAILED = 406
OVERFLOW_SUFFIX = ".overflow"
OVERFLOW_MAX_LENGTH = 1000  # only counted, then dropped: a short backlog is enough


def parse_bindings(bindings: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in bindings:
        exchange, _, routing_key = item.partition(":")
        pairs.append((exchange, routing_key))
    return pairs


@dataclass(frozen=True, slots=True)
class Topology:
    """What the source consumes and where dead letters go, from the settings."""

    queue: str
    mode: QueueMode
    bindings: list[tuple[str, str]]
    dead_letter_exchange: str
    durable: bool  # of exchanges (and the existing-mode queue) declared when missing
    dead_letter_max_length: int = 100_000
    dead_letter_max_bytes: int = 1 << 30
    dead_letter_ttl: timedelta = field(default_factory=timedelta)

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        return cls(
            queue=settings.amqp_queue,
            mode=settings.amqp_queue_mode,
            bindings=parse_bindings(settings.amqp_bindings),
            dead_letter_exchange=settings.amqp_dead_letter_exchange,
            durable=settings.amqp_exchange_durable,
            dead_letter_max_length=settings.amqp_dead_letter_max_length,
            dead_letter_max_bytes=settings.amqp_dead_letter_max_bytes,
            dead_letter_ttl=settings.amqp_dead_letter_ttl,
        )

    @property
    def overflow_queue(self) -> str:
        return self.dead_letter_exchange + OVERFLOW_SUFFIX

    def dead_letter_arguments(self) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "x-max-length": self.dead_letter_max_length,
            "x-max-length-bytes": self.dead_letter_max_bytes,
            "x-overflow": "drop-head",  # keep the newest: the poison of today matters
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.overflow_queue,
        }
        ttl_ms = int(self.dead_letter_ttl.total_seconds() * 1000)
        if ttl_ms > 0:
            arguments["x-message-ttl"] = ttl_ms
        return arguments


@dataclass(slots=True)
class Declared:
    """What `declare` found and did, for the start-up log line."""

    how: str = ""
    missing_exchanges: list[str] = field(default_factory=list)
    dead_letter_bounded: bool = True


async def _exchange_exists(
    connection: AmqpConnection, channel: AmqpChannel, name: str
) -> tuple[bool, AmqpChannel]:
    try:
        await channel.call(channel.raw.exchange_declare, exchange=name, passive=True)
        return True, channel
    except AmqpError as exc:
        if exc.code != NOT_FOUND:
            raise
    return False, await connection.channel()  # a failed passive declare closes the channel


async def _queue_as_it_is(
    connection: AmqpConnection, queue: str, **declare: Any
) -> tuple[AmqpChannel, str]:
    """Declare `queue` with `declare`, unless it exists: then use it with its properties."""
    channel = await connection.channel()
    try:
        await channel.call(channel.raw.queue_declare, queue=queue, passive=True)
        return channel, "existing, declared passively"
    except AmqpError as exc:
        if exc.code != NOT_FOUND:
            raise
    channel = await connection.channel()
    try:
        await channel.call(channel.raw.queue_declare, queue=queue, **declare)
    except AmqpError as exc:  # declared meanwhile with other properties: use that one
        if exc.code != PRECONDITION_FAILED:
            raise
        channel = await connection.channel()
        await channel.call(channel.raw.queue_declare, queue=queue, passive=True)
        return channel, "existing, declared passively"
    arguments = declare.get("arguments") or {}
    return channel, f"declared (durable={declare.get('durable', False)}{_args(arguments)})"


def _args(arguments: dict[str, Any]) -> str:
    return "".join(f", {k}={v}" for k, v in arguments.items())


async def declare(connection: AmqpConnection, topology: Topology) -> Declared:
    """Declare what is missing; report which configured exchanges did not exist."""
    result = Declared()
    if topology.mode is QueueMode.EXISTING:
        # oslo.messaging declares `notifications.<priority>` queues with amqp_durable_queues
        channel, how = await _queue_as_it_is(
            connection, topology.queue, durable=topology.durable, auto_delete=False
        )
        result.how = f"producer queue ({how}), no bindings of its own"
    else:
        channel, how = await _queue_as_it_is(connection, topology.queue, durable=True)
        result.how = f"own queue ({how})"
        for exchange, routing_key in topology.bindings:
            exists, channel = await _exchange_exists(connection, channel, exchange)
            if not exists:
                # The binding needs the exchange now; declared as oslo.messaging would
                # (topic, amqp_durable_queues), so the producer's own declare agrees.
                result.missing_exchanges.append(exchange)
                await channel.call(
                    channel.raw.exchange_declare,
                    exchange=exchange,
                    exchange_type="topic",
                    durable=topology.durable,
                )
            await channel.call(
                channel.raw.queue_bind,
                queue=topology.queue,
                exchange=exchange,
                routing_key=routing_key,
            )
    await channel.close()
    result.dead_letter_bounded = await _declare_dead_letters(connection, topology)
    return result


async def _declare_dead_letters(connection: AmqpConnection, topology: Topology) -> bool:
    """Declare the dead-letter exchange, its bounded queue and the overflow queue.

    False when the dead-letter queue already exists with other arguments (declared by an
    older version): it is used as it is, and the log says how to bound it.
    """
    dlx = topology.dead_letter_exchange
    channel = await connection.channel()
    await channel.call(
        channel.raw.exchange_declare, exchange=dlx, exchange_type="fanout", durable=True
    )
    await channel.call(
        channel.raw.queue_declare,
        queue=topology.overflow_queue,
        durable=True,
        arguments={"x-max-length": OVERFLOW_MAX_LENGTH},
    )
    bounded = True
    try:
        await channel.call(
            channel.raw.queue_declare,
            queue=dlx,
            durable=True,
            arguments=topology.dead_letter_arguments(),
        )
    except AmqpError as exc:
        if exc.code != PRECONDITION_FAILED:
            raise
        bounded = False
        log.warning(
            "dead-letter queue %s exists with other arguments; it is used as it is and "
            "is NOT bounded: delete it once drained, or set a policy (max-length %d, "
            "max-length-bytes %d, overflow drop-head)",
            dlx,
            topology.dead_letter_max_length,
            topology.dead_letter_max_bytes,
        )
        channel = await connection.channel()
    await channel.call(channel.raw.queue_bind, queue=dlx, exchange=dlx, routing_key="")
    await channel.close()
    return bounded
