"""Run the ingest pipeline (search sink only, or given sinks) in the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

from prometheus_client import REGISTRY

from stacktrail.app import run_pipeline
from stacktrail.config import Settings
from stacktrail.domain.delivery import Sink
from stacktrail.domain.directory import DefaultTrails, TrailDirectory
from stacktrail.ingest.owners import Owners
from stacktrail.search.client import SearchClient
from stacktrail.search.sink import SearchSink


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


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of a metric sample of this process (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0
