"""oslo.messaging's own notifier as the producer, as OpenStack services run it.

Each call builds a private oslo.config namespace, so exchanges (`control_exchange`)
differ per call without touching process-wide defaults. Runs in a thread: the rabbit
driver (kombu) blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_messaging import opts as oslo_opts

Notification = tuple[str, dict[str, Any]]  # (event_type, payload)


def transport_url(amqp_url: str) -> str:
    """The oslo transport URL of an `amqp://` URL (same host, credentials and vhost)."""
    _, rest = amqp_url.split("://", 1)
    host, _, vhost = rest.partition("/")
    vhost = vhost.replace("%2F", "")
    return f"rabbit://{host}/{vhost}"


def _notify(
    amqp_url: str,
    exchange: str,
    notifications: Sequence[Notification],
    publisher: str,
    topic: str,
) -> None:
    conf = cfg.ConfigOpts()
    conf([], project="stacktrail-tests")
    for group, options in oslo_opts.list_opts():
        conf.register_opts(list(options), group=group)
    conf.set_override("control_exchange", exchange)
    transport = oslo_messaging.get_notification_transport(conf, url=transport_url(amqp_url))
    try:
        notifier = oslo_messaging.Notifier(
            transport, publisher_id=publisher, driver="messagingv2", topics=[topic]
        )
        for event_type, payload in notifications:
            notifier.info({}, event_type, payload)
    finally:
        transport.cleanup()


async def notify(
    amqp_url: str,
    exchange: str,
    notifications: Sequence[Notification],
    *,
    publisher: str = "api.example",
    topic: str = "notifications",
) -> None:
    """Publish `notifications` at priority info on `exchange` (routing key `<topic>.info`);
    oslo declares the exchange and its `<topic>.info` queue (non-durable by default)."""
    await asyncio.to_thread(_notify, amqp_url, exchange, list(notifications), publisher, topic)
