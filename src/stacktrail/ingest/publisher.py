"""Publishes stacktrail's own audit events (changes to trails) into the pipeline's input.

A change to a trail is itself an audit event: it is published as an oslo.messaging v2
notification to the first bound exchange, so it travels the same path as every other
event and lands in the changed project's own trail.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pika

from stacktrail.config import Settings
from stacktrail.ingest.amqp import AmqpChannel, AmqpConnection, AmqpError
from stacktrail.ingest.topology import parse_bindings

log = logging.getLogger(__name__)

EVENT_TYPE = "audit.stacktrail"


def notification(event: dict[str, Any], event_type: str = EVENT_TYPE) -> bytes:
    """An oslo.messaging v2 envelope around a CADF event."""
    message = {
        "message_id": str(uuid.uuid4()),
        "publisher_id": "stacktrail",
        "event_type": event_type,
        "priority": "INFO",
        "payload": event,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(message).decode()})


def _routing_key(pattern: str) -> str:
    """A concrete key matching a binding pattern: `notifications.#` -> `notifications.info`."""
    words = pattern.split(".")
    return ".".join("info" if w in ("#", "*") else w for w in words)


class EventPublisher:
    """A lazily connected, confirmed publisher; reconnects on the next publish after a drop."""

    def __init__(self, settings: Settings) -> None:
        exchange, pattern = parse_bindings(settings.amqp_bindings)[0]
        self._url = settings.amqp_url
        self._exchange = exchange
        self._routing_key = _routing_key(pattern)
        self._connection: AmqpConnection | None = None
        self._channel: AmqpChannel | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AmqpChannel:
        if self._channel is None or not self._channel.is_open:
            if self._connection is not None:
                await self._connection.close()
            self._connection = await AmqpConnection.open(self._url)
            self._channel = await self._connection.channel()
            await self._channel.enable_confirms()
        return self._channel

    async def publish(self, event: dict[str, Any], event_type: str = EVENT_TYPE) -> None:
        """Publish one CADF event; raises ConnectionError when the broker did not confirm."""
        body = notification(event, event_type)
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        async with self._lock:
            try:
                channel = await self._ensure()
                confirmed = await channel.publish_confirmed(
                    self._exchange, self._routing_key, body, properties
                )
            except (AmqpError, OSError) as exc:
                self._channel = None
                raise ConnectionError(f"could not publish the audit event: {exc}") from exc
        if not confirmed:
            raise ConnectionError("the broker did not confirm the audit event")

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = None
