"""stacktrail's own audit events go into the same input as every other event (real RabbitMQ)."""

from __future__ import annotations

import uuid

import pika

from stacktrail.config import Settings
from stacktrail.ingest.decode import decode_message
from stacktrail.ingest.publisher import EventPublisher, _routing_key
from tests.support.broker import take_all
from tests.support.cadf_factory import make_cadf


def test_routing_key_matches_the_binding() -> None:
    assert _routing_key("notifications.#") == "notifications.info"
    assert _routing_key("notifications.info") == "notifications.info"


async def test_published_event_decodes_like_any_other(amqp_url: str) -> None:
    exchange = f"ex-{uuid.uuid4().hex[:6]}"
    queue = f"q-{uuid.uuid4().hex[:6]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(exchange, exchange_type="topic")
    channel.queue_declare(queue)
    channel.queue_bind(queue, exchange, routing_key="notifications.#")
    connection.close()

    publisher = EventPublisher(
        Settings(amqp_url=amqp_url, amqp_bindings=[f"{exchange}:notifications.#"])
    )
    try:
        await publisher.publish(make_cadf(event_id="cfg-1", action="update/trail"))
        await publisher.publish(make_cadf(event_id="cfg-2", action="update/trail"))
    finally:
        await publisher.close()
    messages = await take_all(amqp_url, queue, 2)
    events = [decode_message(m.body) for m in messages]
    assert [e.id for e in events] == ["cfg-1", "cfg-2"]
    assert all(e.event_type == "audit.stacktrail" for e in events)
