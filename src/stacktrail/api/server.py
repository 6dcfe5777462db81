"""Serving the API with uvicorn inside the composition root's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from stacktrail.config import Settings

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # Signals belong to the composition root, which sets `stop_event`.
        yield


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's headers.

    uvicorn bounds only the idle time after a response (`timeout_keep_alive`); a client
    that connects and sends nothing, or its headers a byte at a time, would hold the
    connection for ever. The deadline starts when the connection opens and again after
    each response, and ends when a request's headers are complete.
    """

    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()


def _protocol(header_timeout: float) -> type[H11Protocol]:
    return type("GuardedH11", (_GuardedH11,), {"header_timeout": header_timeout})


async def serve(
    app: FastAPI,
    settings: Settings,
    stop_event: asyncio.Event,
    *,
    host: str | None = None,
    port: int | None = None,
    on_listening: Callable[[], None] | None = None,
) -> None:
    """Serve until `stop_event` is set, then stop accepting connections and let requests
    in flight finish (within `settings.shutdown_grace`). Raises if it cannot listen.
    `on_listening` is called once the socket accepts connections."""
    config = uvicorn.Config(
        app,
        host=host or settings.api_host,
        port=settings.api_port if port is None else port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, int(settings.shutdown_grace.total_seconds())),
        server_header=False,
        http=_protocol(settings.api_header_timeout.total_seconds()),
        timeout_keep_alive=max(1, int(settings.api_keep_alive_timeout.total_seconds())),
        limit_concurrency=settings.api_max_connections,
        h11_max_incomplete_event_size=settings.api_max_header_bytes,
    )
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind; keep that inside this task
            raise OSError(f"the API cannot listen on {config.host}:{config.port}") from None

    serving = asyncio.create_task(run(), name="api-server")
    stopping = asyncio.create_task(stop_event.wait(), name="api-stop")
    if on_listening is not None:

        async def announce() -> None:
            while not server.started:  # uvicorn sets it once the socket listens
                if serving.done():
                    return
                await asyncio.sleep(0.02)
            on_listening()

        serving.add_done_callback(lambda _: announcing.cancel())
        announcing = asyncio.create_task(announce(), name="api-announce")
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        server.should_exit = True
        await serving
