"""Composition root: settings -> objects, the task group, and the shutdown order.

The only module that imports every stage. Shutdown (SIGTERM/SIGINT): stop consuming,
dispatch what already arrived, let the sinks finish within the grace period, ack what
is durable, close. Whatever is not durable by then stays unacked and is redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from enum import StrEnum

from stacktrail.clients.search import SearchClient
from stacktrail.pipeline import Pipeline
from stacktrail.routing import Router
from stacktrail.settings import Settings
from stacktrail.sinks.base import Sink
from stacktrail.sinks.search import SearchSink
from stacktrail.source.consumer import AmqpSource, redact
from stacktrail.trails.directory import DefaultTrails, TrailDirectory

log = logging.getLogger(__name__)


class Role(StrEnum):
    PIPELINE = "pipeline"
    API = "api"
    SCHEDULER = "scheduler"


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def build_sinks(settings: Settings) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.search_enabled:
        client = SearchClient(
            settings.search_url,
            username=settings.search_username,
            password=settings.search_password,
            verify=settings.search_verify_tls,
            timeout=settings.search_timeout.total_seconds(),
            max_connections=settings.search_max_inflight * 2,
        )
        sinks.append(SearchSink(client, settings))
        log.info(
            "search sink: bulk indexing into %s (indices %s)",
            settings.search_url,
            settings.search_index_template,
        )
    else:
        log.info("search sink off (STACKTRAIL_SEARCH_URL is empty)")
    return sinks


async def run_pipeline(
    settings: Settings,
    stop: asyncio.Event,
    directory: TrailDirectory | None = None,
    sinks: list[Sink] | None = None,
    on_ready: Callable[[AmqpSource, Pipeline], Awaitable[None]] | None = None,
) -> None:
    directory = directory or DefaultTrails(settings)
    sinks = build_sinks(settings) if sinks is None else sinks
    if not sinks:
        log.warning("no sink is enabled: events are consumed and acked without being stored")
    for sink in sinks:
        await sink.start()
    source = AmqpSource(settings)
    pipeline = Pipeline(source, Router(directory), sinks)
    log.info(
        "pipeline starting: RabbitMQ %s queue %r", redact(settings.amqp_url), settings.amqp_queue
    )
    source_task = asyncio.create_task(source.run(stop), name="amqp-source")
    dispatch_task = asyncio.create_task(pipeline.run(), name="dispatch")
    if on_ready is not None:
        await on_ready(source, pipeline)
    await stop.wait()

    log.info("stopping: no new messages; finishing %d in flight", pipeline.in_flight)
    await source.stop_consuming()
    await source_task
    await pipeline.drain()
    dispatch_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dispatch_task
    grace = settings.shutdown_grace.total_seconds()
    await asyncio.gather(*(sink.stop(grace) for sink in sinks))
    await source.close()
    log.info("pipeline stopped (%d messages left unacked for redelivery)", pipeline.in_flight)


async def run(settings: Settings, roles: set[Role]) -> None:
    stop = asyncio.Event()
    install_signal_handlers(stop)
    tasks = []
    if Role.PIPELINE in roles:
        tasks.append(asyncio.create_task(run_pipeline(settings, stop), name="pipeline"))
    if not tasks:
        return
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        if task.exception() is not None:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise task.exception()  # type: ignore[misc]
    await asyncio.gather(*tasks)
