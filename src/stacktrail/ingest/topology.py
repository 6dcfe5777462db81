"""Queue, bindings and dead-letter exchange the pipeline needs on the broker."""

from __future__ import annotations

import logging

from stacktrail.ingest.amqp import AmqpChannel, AmqpConnection, AmqpError

log = logging.getLogger(__name__)

NOT_FOUND = 404


def parse_bindings(bindings: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for item in bindings:
        exchange, _, routing_key = item.partition(":")
        pairs.append((exchange, routing_key))
    return pairs


async def _ensure_exchange(
    connection: AmqpConnection, channel: AmqpChannel, name: str, durable: bool
) -> AmqpChannel:
    """Use an existing exchange as it is; create it (topic) only when missing.

    oslo.messaging declares its exchanges itself, non-durable by default; declaring them
    with other properties would fail for both sides, so an existing one is never redeclared.
    """
    try:
        await channel.call(channel.raw.exchange_declare, exchange=name, passive=True)
        return channel
    except AmqpError as exc:
        if exc.code != NOT_FOUND:
            raise
    channel = await connection.channel()  # a failed passive declare closes the channel
    await channel.call(
        channel.raw.exchange_declare, exchange=name, exchange_type="topic", durable=durable
    )
    log.info("created exchange %r (topic, durable=%s)", name, durable)
    return channel


async def declare(
    connection: AmqpConnection,
    queue: str,
    bindings: list[tuple[str, str]],
    dead_letter_exchange: str,
    exchange_durable: bool,
) -> None:
    channel = await connection.channel()
    await channel.call(channel.raw.queue_declare, queue=queue, durable=True)
    for exchange, routing_key in bindings:
        channel = await _ensure_exchange(connection, channel, exchange, exchange_durable)
        await channel.call(
            channel.raw.queue_bind, queue=queue, exchange=exchange, routing_key=routing_key
        )
    await channel.call(
        channel.raw.exchange_declare,
        exchange=dead_letter_exchange,
        exchange_type="fanout",
        durable=True,
    )
    await channel.call(channel.raw.queue_declare, queue=dead_letter_exchange, durable=True)
    await channel.call(
        channel.raw.queue_bind,
        queue=dead_letter_exchange,
        exchange=dead_letter_exchange,
        routing_key="",
    )
    await channel.close()
