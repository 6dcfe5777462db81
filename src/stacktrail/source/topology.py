"""Queue, bindings and dead-letter exchange the pipeline needs on the broker."""

from __future__ import annotations

import logging

import aiormq
from aiormq.abc import AbstractChannel, AbstractConnection

log = logging.getLogger(__name__)


def parse_bindings(bindings: list[str]) -> list[tuple[str, str]]:
    return [tuple(item.split(":", 1)) for item in bindings]  # type: ignore[misc]


async def _ensure_exchange(
    connection: AbstractConnection, channel: AbstractChannel, name: str, durable: bool
) -> AbstractChannel:
    """Use an existing exchange as it is; create it (topic) only when missing.

    oslo.messaging declares its exchanges itself, non-durable by default; declaring them
    with other properties would fail for both sides, so an existing one is never redeclared.
    """
    try:
        await channel.exchange_declare(name, passive=True)
        return channel
    except aiormq.exceptions.ChannelNotFoundEntity:
        channel = await connection.channel()  # a failed passive declare closes the channel
        await channel.exchange_declare(name, exchange_type="topic", durable=durable)
        log.info("created exchange %r (topic, durable=%s)", name, durable)
        return channel


async def declare(
    connection: AbstractConnection,
    queue: str,
    bindings: list[tuple[str, str]],
    dead_letter_exchange: str,
    exchange_durable: bool,
) -> None:
    channel = await connection.channel()
    await channel.queue_declare(queue, durable=True)
    for exchange, routing_key in bindings:
        channel = await _ensure_exchange(connection, channel, exchange, exchange_durable)
        await channel.queue_bind(queue, exchange, routing_key=routing_key)
    await channel.exchange_declare(dead_letter_exchange, exchange_type="fanout", durable=True)
    await channel.queue_declare(dead_letter_exchange, durable=True)
    await channel.queue_bind(dead_letter_exchange, dead_letter_exchange, routing_key="")
    await channel.close()
