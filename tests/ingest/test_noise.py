"""Ordinary notifications around the audit events, and a bounded dead-letter queue.

Real RabbitMQ (own vhost), real search server; oslo.messaging's notifier publishes, as
the services do.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pika
import pytest

from stacktrail.config import Settings
from stacktrail.ingest.consumer import REASON_HEADER
from stacktrail.search.documents import index_name
from tests.support import search
from tests.support.broker import (
    own_queue_settings,
    publish,
    queue_depth,
    take_all,
    wait_for_consumer,
)
from tests.support.cadf_factory import DEFAULT_EVENT_TIME, make_cadf
from tests.support.oslo_producer import notify
from tests.support.pipeline import running, sample
from tests.support.polling import eventually

PROJECT = "cccc0000cccc0000cccc0000cccc0000"
NOISE_TYPE = "compute.instance.create.end"


@pytest.fixture
def settings(amqp_url: str, search_url: str, index_template: str) -> Settings:
    return own_queue_settings(
        amqp_url,
        amqp_prefetch=200,
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="50ms",
        archive_enabled=False,
        shutdown_grace="5s",
    )


def _instance_payload(i: int) -> dict[str, Any]:
    return {"instance_id": f"inst-{i}", "state": "active", "tenant_id": PROJECT}


async def _drained(settings: Settings) -> bool:
    return await queue_depth(settings.amqp_url, settings.amqp_queue) == 0


async def test_noise_is_counted_and_acked_not_dead_lettered(settings: Settings) -> None:
    notifications: list[tuple[str, dict[str, Any]]] = []
    for i in range(1000):
        notifications.append((NOISE_TYPE, _instance_payload(i)))
        notifications.append(
            ("audit.http.response", make_cadf(event_id=f"noise-{i}", initiator_project=PROJECT))
        )
    ignored = ("stacktrail_messages_ignored_total", {"event_type": NOISE_TYPE})
    before = sample(*ignored)
    index = index_name(settings.search_index_template, PROJECT, DEFAULT_EVENT_TIME)
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await notify(settings.amqp_url, "nova", notifications)
        assert await search.wait_for_count(settings.search_url, index, 1000, timeout=60) == 1000
        await eventually(lambda: _drained(settings), every=0.2)

        async def counted() -> bool:
            return sample(*ignored) - before == 1000

        await eventually(counted, every=0.2)
    assert await queue_depth(settings.amqp_url, settings.amqp_dead_letter_exchange) == 0
    assert await queue_depth(settings.amqp_url, settings.amqp_queue) == 0
    expected = {f"noise-{i}" for i in range(1000)}
    assert await search.missing(settings.search_url, index, expected) == set()


async def test_noise_goes_to_the_dead_letter_queue_when_asked(settings: Settings) -> None:
    settings = settings.model_copy(update={"amqp_dead_letter_noise": True})
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await notify(
            settings.amqp_url, "nova", [(NOISE_TYPE, _instance_payload(i)) for i in range(5)]
        )
        dead = await take_all(settings.amqp_url, settings.amqp_dead_letter_exchange, 5)
    assert len(dead) == 5
    assert {m.headers[REASON_HEADER] for m in dead} == {"undecodable: no CADF event in payload"}


@pytest.mark.parametrize(
    ("bound", "size", "kept"),
    [
        ({"amqp_dead_letter_max_length": 50}, 100, 50),
        # 64 KiB of bodies: 32 of 2,000 bytes
        ({"amqp_dead_letter_max_bytes": 65536}, 2000, 32),
    ],
    ids=["length", "bytes"],
)
async def test_a_dead_letter_flood_keeps_the_newest_within_the_bound(
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    bound: dict[str, int],
    size: int,
    kept: int,
) -> None:
    settings = settings.model_copy(update=bound)
    bodies = [f"garbage {i:04d} ".encode().ljust(size, b"x") for i in range(80)]
    dropped = ("stacktrail_dead_letters_dropped_total", {"reason": "maxlen"})
    before = sample(*dropped)
    caplog.set_level(logging.WARNING, logger="stacktrail.ingest.consumer")
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, bodies)
        await eventually(lambda: _drained(settings), every=0.2)

        async def reported() -> bool:
            return sample(*dropped) - before == 80 - kept

        await eventually(reported, every=0.2)
        dead = await take_all(settings.amqp_url, settings.amqp_dead_letter_exchange, 80, 3)
    assert sorted(m.body for m in dead) == bodies[80 - kept :]
    assert all(m.headers[REASON_HEADER].startswith("undecodable: ") for m in dead)
    assert any("is full: dropped its oldest dead letters" in r.message for r in caplog.records)


async def test_expired_dead_letters_are_dropped_and_counted(settings: Settings) -> None:
    settings = settings.model_copy(update={"amqp_dead_letter_ttl": timedelta(seconds=1)})
    expired = ("stacktrail_dead_letters_dropped_total", {"reason": "expired"})
    before = sample(*expired)
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, [b"garbage %d" % i for i in range(5)])

        async def counted() -> bool:
            return sample(*expired) - before == 5

        await eventually(counted, every=0.2)
    assert await queue_depth(settings.amqp_url, settings.amqp_dead_letter_exchange) == 0


def _declare_unbounded(url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, durable=True)
    finally:
        connection.close()


async def test_an_unbounded_dead_letter_queue_of_an_older_version_is_used_as_it_is(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(
        _declare_unbounded, settings.amqp_url, settings.amqp_dead_letter_exchange
    )
    caplog.set_level(logging.WARNING, logger="stacktrail.ingest.topology")
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, [b"garbage"])
        dead = await take_all(settings.amqp_url, settings.amqp_dead_letter_exchange, 1)
    assert [m.body for m in dead] == [b"garbage"]
    assert any("is NOT bounded" in r.getMessage() for r in caplog.records)
