"""`serve`: real HTTP, and a graceful stop that lets a request in flight finish."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from stacktrail.api import create_app, serve
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.trail_store import TrailStore
from tests.api.live_server import LiveServer, free_port


async def test_serve_until_stopped(settings: Settings, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    await db.upgrade(url)

    def build() -> tuple[TrailStore, object]:
        store = TrailStore(db.create_engine(url), settings)
        return store, create_app(settings, store, None)

    server = LiveServer(settings, build)  # type: ignore[arg-type]
    await asyncio.to_thread(server.start)
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            response = await http.put("/v1/projects/p1/trail", json={"retention_days": 8})
            assert response.status_code == 200
            assert response.headers["X-Stacktrail-Auth"] == "DISABLED"
            assert "server" not in response.headers
            assert (await http.get("/openapi.json")).json()["info"]["title"] == "stacktrail"
    finally:
        await asyncio.to_thread(server.stop)


async def test_graceful_stop_finishes_requests_in_flight(
    settings: Settings, store: TrailStore
) -> None:
    started = asyncio.Event()

    async def slow_check() -> None:
        started.set()
        await asyncio.sleep(0.5)

    app = create_app(settings, store, None, readiness={"slow": slow_check})
    stop = asyncio.Event()
    port = free_port()
    serving = asyncio.create_task(serve(app, settings, stop, host="127.0.0.1", port=port))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(100):
            try:
                await http.get("/healthz")
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        request = asyncio.create_task(http.get("/readyz"))
        await started.wait()
        stop.set()
        response = await request
        assert response.status_code == 200
    await asyncio.wait_for(serving, 10)


async def test_serve_fails_when_the_port_is_taken(settings: Settings, store: TrailStore) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = create_app(settings, store, None)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await asyncio.wait_for(
                serve(app, settings, asyncio.Event(), host="127.0.0.1", port=port), 10
            )
