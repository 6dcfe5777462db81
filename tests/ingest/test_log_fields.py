"""Dead-letter lines name the event and its project (real RabbitMQ, own vhost)."""

from __future__ import annotations

import logging
import uuid

import orjson
import pytest

from stacktrail.config import Settings
from stacktrail.domain.delivery import Record
from stacktrail.telemetry.logging import JsonFormatter
from tests.support.broker import publish, take_all, wait_for_consumer
from tests.support.cadf_factory import make_notification
from tests.support.pipeline import running

PROJECT = "eeee0000eeee0000eeee0000eeee0000"


class Breaks:
    name = "breaks"

    async def start(self) -> None:
        pass

    async def stop(self, grace: float) -> None:
        pass

    def wants(self, record: Record) -> bool:
        return True

    async def put(self, record: Record) -> None:
        raise KeyError("a bug")


async def test_the_dead_letter_line_carries_event_and_project_ids(
    amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["nova:notifications.#"],
        archive_enabled=False,
        shutdown_grace="5s",
    )
    caplog.set_level(logging.WARNING, logger="stacktrail.ingest.consumer")
    async with running(settings, sinks=[Breaks()]):  # type: ignore[list-item]
        await wait_for_consumer(amqp_url, queue)
        await publish(amqp_url, [make_notification(event_id="ev-1", initiator_project=PROJECT)])
        assert len(await take_all(amqp_url, settings.amqp_dead_letter_exchange, 1)) == 1
    line = next(r for r in caplog.records if r.getMessage().startswith("dead-lettered"))
    assert f"of event ev-1, project {PROJECT}" in line.getMessage()
    entry = orjson.loads(JsonFormatter().format(line))
    assert entry["event_id"] == "ev-1"
    assert entry["project_id"] == PROJECT
    assert "KeyError" in entry["message"]
