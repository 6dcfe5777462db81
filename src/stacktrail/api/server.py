"""Serving the API with uvicorn inside the composition root's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from fastapi import FastAPI

from stacktrail.config import Settings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the composition root, which sets `stop_event`.
        yield


async def serve(
    app: FastAPI,
    settings: Settings,
    stop_event: asyncio.Event,
    *,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Serve until `stop_event` is set, then stop accepting connections and let requests
    in flight finish (within `settings.shutdown_grace`). Raises if it cannot listen."""
    config = uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace.total_seconds())),
        server_header=False,
    )
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; keep that inside this task
            raise OSError(f"the API cannot listen on {config.host}:{config.port}") from None

    serving = asyncio.create_task(run(), name="api-server")
    stopping = asyncio.create_task(stop_event.wait(), name="api-stop")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
        await serving
