"""Sources as deployed: the default bindings, a producer-declared queue, raw CADF.

Real RabbitMQ (own vhost), real search server; oslo.messaging's notifier publishes.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from stacktrail.config import QueueMode, Settings
from stacktrail.search.documents import index_name
from tests.support import search
from tests.support.broker import (
    publish_default,
    queue_depth,
    queue_durable,
    wait_for_consumer,
)
from tests.support.cadf_factory import DEFAULT_EVENT_TIME, encode, make_cadf
from tests.support.oslo_producer import notify
from tests.support.pipeline import running
from tests.support.polling import eventually

PROJECT = "dddd0000dddd0000dddd0000dddd0000"


@pytest.fixture
def settings(amqp_url: str, search_url: str, index_template: str) -> Settings:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    return Settings(  # the default bindings
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="50ms",
        archive_enabled=False,
        shutdown_grace="5s",
    )


def _index(settings: Settings) -> str:
    return index_name(settings.search_index_template, PROJECT, DEFAULT_EVENT_TIME)


def _audit(prefix: str, count: int) -> list[tuple[str, dict[str, object]]]:
    return [
        ("audit.http.response", make_cadf(event_id=f"{prefix}-{i}", initiator_project=PROJECT))
        for i in range(count)
    ]


async def test_the_default_bindings_take_ironic_and_nova_from_oslo_notifiers(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stacktrail.ingest.consumer")
    async with running(settings):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await notify(settings.amqp_url, "ironic", _audit("ironic", 20), publisher="ironic-api")
        await notify(settings.amqp_url, "nova", _audit("nova", 20), publisher="nova-api")
        assert await search.wait_for_count(settings.search_url, _index(settings), 40) == 40
    expected = {f"{p}-{i}" for p in ("ironic", "nova") for i in range(20)}
    assert await search.missing(settings.search_url, _index(settings), expected) == set()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"consuming {settings.amqp_queue} on" in text
    assert "own queue (declared (durable=True))" in text
    # nothing had declared them yet in this vhost: the log names them
    missing = next(r.getMessage() for r in caplog.records if "exchanges missing" in r.getMessage())
    assert "ironic" in missing
    assert "magnum" in missing


@pytest.mark.parametrize("mode", [QueueMode.EXISTING, QueueMode.OWN])
async def test_a_producer_declared_non_durable_queue_is_consumed_as_it_is(
    settings: Settings, caplog: pytest.LogCaptureFixture, mode: QueueMode
) -> None:
    topic = f"notifications-{uuid.uuid4().hex[:6]}"
    queue = f"{topic}.info"
    # oslo declares the exchange and `<topic>.info` (non-durable) and publishes into it
    await notify(settings.amqp_url, "keystone", _audit(f"kept-{mode}", 30), topic=topic)
    assert await queue_depth(settings.amqp_url, queue) == 30
    assert not queue_durable(settings.amqp_url, queue)
    settings = settings.model_copy(update={"amqp_queue": queue, "amqp_queue_mode": mode})
    caplog.set_level(logging.INFO, logger="stacktrail.ingest.consumer")
    async with running(settings):
        assert await search.wait_for_count(settings.search_url, _index(settings), 30) >= 30
        # raw CADF through the default exchange, straight into the queue (go-bits audittools)
        raw = [
            encode(make_cadf(event_id=f"raw-{mode}-{i}", initiator_project=PROJECT))
            for i in range(5)
        ]
        await publish_default(settings.amqp_url, raw, queue)
        await notify(settings.amqp_url, "keystone", _audit(f"live-{mode}", 5), topic=topic)

        async def arrived() -> bool:
            expected = {f"raw-{mode}-{i}" for i in range(5)} | {
                f"live-{mode}-{i}" for i in range(5)
            }
            return not await search.missing(settings.search_url, _index(settings), expected)

        await eventually(arrived, every=0.2)
    kept = {f"kept-{mode}-{i}" for i in range(30)}
    assert await search.missing(settings.search_url, _index(settings), kept) == set()
    assert not queue_durable(settings.amqp_url, queue)  # never redeclared durable
    assert await queue_depth(settings.amqp_url, queue) == 0
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "existing, declared passively" in text
    if mode is QueueMode.EXISTING:
        assert "bindings: none (the producers bind it)" in text
