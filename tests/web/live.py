"""The API with the web UI mounted, served by uvicorn in a thread with its own event loop,
on a config store seeded with delivery history."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI

from stacktrail.api import create_app, serve
from stacktrail.clients.keystone import KeystoneClient
from stacktrail.settings import Settings
from stacktrail.trails import db
from stacktrail.trails.sql_ledger import SqlLedger
from stacktrail.trails.store import TrailStore
from stacktrail.web import mount_ui
from tests.api.live_server import free_port

Seed = Callable[[SqlLedger], Awaitable[None]]


def spool_bytes(project_id: str, region: str) -> int | None:
    """Like the service's: the spool holds a project's events once, for every region."""
    return 48_213


class UiServer:
    def __init__(self, settings: Settings, database_url: str, seed: Seed) -> None:
        self.settings = settings
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app: FastAPI | None = None
        self._seed = seed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ui-live-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await db.upgrade(self.database_url)
        store = TrailStore(db.create_engine(self.database_url), self.settings)
        try:
            ledger = SqlLedger(store.engine)
            await self._seed(ledger)
            keystone = KeystoneClient(self.settings) if self.settings.keystone_url else None
            app = create_app(
                self.settings, store, keystone, ledger=ledger, pending_spool_bytes=spool_bytes
            )
            mount_ui(app, self.settings)
            self.app = app
            await serve(app, self.settings, self._stop, host="127.0.0.1", port=self.port)
        finally:
            await store.close()

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._error is not None:
                raise RuntimeError("the UI server failed to start") from self._error
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the UI did not answer at {self.url} within {timeout}s")

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the UI server did not stop"
        if self._error is not None:
            raise self._error
