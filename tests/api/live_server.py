"""The API served over real HTTP by `stacktrail.api.serve`, in a thread with its own loop."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable

import httpx
from fastapi import FastAPI

from stacktrail.api import serve
from stacktrail.config import Settings
from stacktrail.db.trail_store import TrailStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """Builds the store and app inside the server's own event loop (connections stay there)."""

    name = "API"

    def __init__(
        self, settings: Settings, build: Callable[[], tuple[TrailStore, FastAPI]] | None = None
    ) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._build = build
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        store, app = await self._open()
        try:
            await serve(app, self.settings, self._stop, host="127.0.0.1", port=self.port)
        finally:
            await store.close()

    async def _open(self) -> tuple[TrailStore, FastAPI]:
        """The store and the app, built inside the server's loop (subclasses may await)."""
        assert self._build is not None
        return self._build()

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError(f"the {self.name} server failed to start") from self._error
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the {self.name} did not answer at {self.url} within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the {self.name} server did not stop"
        if self._error is not None:
            raise self._error
