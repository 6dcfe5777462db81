"""Small helpers to publish to and inspect the real RabbitMQ in tests."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterable
from typing import Any

import aiormq
from pamqp.commands import Basic


async def publish(
    url: str,
    bodies: Iterable[bytes],
    *,
    exchange: str = "nova",
    routing_key: str = "notifications.info",
) -> int:
    """Publish persistent messages with confirms; returns how many."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.exchange_declare(exchange, exchange_type="topic", passive=False)
        pending = []
        count = 0
        for body in bodies:
            pending.append(
                channel.basic_publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    properties=Basic.Properties(delivery_mode=2),
                )
            )
            count += 1
            if len(pending) >= 500:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return count
    finally:
        await connection.close()


async def queue_depth(url: str, queue: str) -> int:
    """Messages ready in a queue (not counting unacked ones held by a consumer)."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        result = await channel.queue_declare(queue, passive=True)
        return int(result.message_count or 0)
    finally:
        await connection.close()


async def take_all(url: str, queue: str, expected: int, timeout: float = 20.0) -> list[Any]:
    """Get (and ack) messages from a queue until `expected` arrived or the timeout."""
    messages: list[Any] = []
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(messages) < expected and loop.time() < deadline:
            message = await channel.basic_get(queue, no_ack=True)
            if isinstance(message.delivery, Basic.GetOk):
                messages.append(message)
            else:
                await asyncio.sleep(0.1)
        return messages
    finally:
        await connection.close()


async def wait_for_consumer(url: str, queue: str, timeout: float = 60.0) -> None:
    """Wait until a consumer is attached to `queue` (its bindings are declared by then)."""
    vhost = url.rsplit("/", 1)[1]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        result = await asyncio.to_thread(
            subprocess.run,
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "consumers"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        for line in result.stdout.splitlines():
            name, _, consumers = line.partition("\t")
            if name == queue and consumers.strip().isdigit() and int(consumers) > 0:
                return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no consumer on {queue} after {timeout} s")
