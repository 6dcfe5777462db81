"""Small helpers to publish to and inspect the real RabbitMQ in tests (pika, in a thread)."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pika

from stacktrail.config import Settings
from tests.support.cadf_factory import make_notification
from tests.support.polling import eventually


def own_queue_settings(amqp_url: str, **overrides: Any) -> Settings:
    """Settings of a source on a queue (and dead-letter exchange) of its own, bound to
    nova's notifications."""
    queue = f"st-{uuid.uuid4().hex[:8]}"
    return Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["nova:notifications.#"],
        **overrides,
    )


@dataclass
class Message:
    body: bytes
    headers: dict[str, Any]


def _publish(url: str, bodies: list[bytes], exchange: str, routing_key: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange, exchange_type="topic")
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=2)
        for body in bodies:
            channel.basic_publish(exchange, routing_key, body, properties)
        return len(bodies)
    finally:
        connection.close()


async def publish(
    url: str,
    bodies: Iterable[bytes],
    *,
    exchange: str = "nova",
    routing_key: str = "notifications.info",
) -> int:
    """Publish persistent messages with publisher confirms; returns how many."""
    return await asyncio.to_thread(_publish, url, list(bodies), exchange, routing_key)


def _publish_default(url: str, bodies: list[bytes], routing_key: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in bodies:
            channel.basic_publish("", routing_key, body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


async def publish_default(url: str, bodies: Iterable[bytes], queue: str) -> None:
    """Publish to the default exchange, straight into `queue` (as go-bits audittools do)."""
    await asyncio.to_thread(_publish_default, url, list(bodies), queue)


def _queue_depth(url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        result = connection.channel().queue_declare(queue, passive=True)
        return int(result.method.message_count)
    finally:
        connection.close()


async def queue_depth(url: str, queue: str) -> int:
    """Messages ready in a queue (not counting unacked ones held by a consumer)."""
    return await asyncio.to_thread(_queue_depth, url, queue)


async def until_drained(url: str, queue: str, within: float = 120.0) -> None:
    """Wait until the consumers took every message of the queue."""

    async def drained() -> bool:
        return await queue_depth(url, queue) == 0

    await eventually(drained, within=within, every=0.2)


async def publish_spread(url: str, prefix: str, count: int, projects: list[str]) -> list[str]:
    """Publish `count` notifications of now, their projects taken in turn; their ids."""
    now = datetime.now(UTC)
    ids = [f"{prefix}-{i}-{uuid.uuid4().hex[:8]}" for i in range(count)]
    await publish(
        url,
        [
            make_notification(
                event_id=e, initiator_project=projects[i % len(projects)], event_time=now
            )
            for i, e in enumerate(ids)
        ],
    )
    return ids


def _take_all(url: str, queue: str, expected: int, timeout: float) -> list[Message]:
    messages: list[Message] = []
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.1)
                continue
            messages.append(Message(body, dict(properties.headers or {})))
        return messages
    finally:
        connection.close()


async def take_all(url: str, queue: str, expected: int, timeout: float = 20.0) -> list[Message]:
    """Get (and ack) messages from a queue until `expected` arrived or the timeout."""
    return await asyncio.to_thread(_take_all, url, queue, expected, timeout)


def queue_durable(url: str, queue: str) -> bool:
    """Whether `queue` is durable, as the broker reports it."""
    vhost = url.rsplit("/", 1)[1]
    result = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "durable"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for line in result.stdout.splitlines():
        name, _, durable = line.partition("\t")
        if name == queue:
            return durable.strip() == "true"
    raise AssertionError(f"no queue {queue} in {vhost}")


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
