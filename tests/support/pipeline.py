"""Run the ingest pipeline (search sink only, or given sinks) in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from prometheus_client import REGISTRY

from stacktrail.app import run_pipeline
from stacktrail.config import Settings
from stacktrail.domain.delivery import Sink
from stacktrail.domain.directory import DefaultTrails, TrailDirectory
from stacktrail.ingest.owners import Owners
from stacktrail.search.client import SearchClient
from stacktrail.search.sink import SearchSink
from tests.support.broker import queue_depth
from tests.support.polling import eventually


@asynccontextmanager
async def running(
    settings: Settings,
    sinks: Sequence[Sink] | None = None,
    directory: TrailDirectory | None = None,
    owners: Owners | None = None,
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    if sinks is None:
        sinks = [SearchSink(SearchClient.from_settings(settings), settings)]
    task = asyncio.create_task(
        run_pipeline(
            settings, stop, directory or DefaultTrails(settings), list(sinks), owners=owners
        )
    )
    await asyncio.sleep(0)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def until_consuming(settings: Settings, within: float = 30.0) -> None:
    """Wait until the pipeline declared its queue, so what is published now is routed."""

    async def declared() -> bool:
        try:
            await queue_depth(settings.amqp_url, settings.amqp_queue)
            return True
        except Exception:
            return False

    await eventually(declared, within=within, every=0.2)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a metric sample of this process (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
