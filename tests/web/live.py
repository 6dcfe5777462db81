"""The API with the web UI mounted, served by uvicorn in a thread with its own event loop,
on a config store seeded with delivery history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from fastapi import FastAPI

from stacktrail.api import create_app
from stacktrail.api.context import AclWriter
from stacktrail.api.routes.exports import router as export_routes
from stacktrail.app import SinkDeliveries
from stacktrail.archive.sink import ArchiveSink
from stacktrail.config import Settings
from stacktrail.db import engine as db
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.event_browse import EventBrowser
from stacktrail.keystone import KeystoneClient
from stacktrail.web import mount_ui
from tests.api.live_server import LiveServer

Seed = Callable[[SqlLedger], Awaitable[None]]
T = TypeVar("T")


def spool_bytes(project_id: str, region: str) -> int | None:
    """Like the service's: the spool holds a project's events once, for every region."""
    return 48_213


class UiServer(LiveServer):
    """The API with the UI mounted, on a migrated store seeded by `seed`."""

    name = "UI"

    def __init__(
        self,
        settings: Settings,
        database_url: str,
        seed: Seed,
        events: Callable[[], EventBrowser] | None = None,
        archive: Callable[[TrailStore, SqlLedger], Awaitable[ArchiveSink]] | None = None,
        acl_writer: AclWriter | None = None,
    ) -> None:
        super().__init__(settings)
        self.database_url = database_url
        self.app: FastAPI | None = None
        self._seed = seed
        self._events = events  # made in the server's own event loop
        self._archive = archive
        self._acl_writer = acl_writer
        self.sink: ArchiveSink | None = None
        self.store: TrailStore | None = None

    async def _open(self) -> tuple[TrailStore, FastAPI]:
        await db.upgrade(self.database_url)
        store = TrailStore(db.create_engine(self.database_url), self.settings)
        try:
            ledger = SqlLedger(store.engine)
            await self._seed(ledger)
        except BaseException:
            await store.close()
            raise
        keystone = KeystoneClient(self.settings) if self.settings.keystone_url else None
        self.store = store
        if self._archive is not None:
            self.sink = await self._archive(store, ledger)
        app = create_app(
            self.settings,
            store,
            keystone,
            ledger=ledger,
            pending_spool_bytes=spool_bytes,
            events=self._events() if self._events is not None else None,
            delivery=SinkDeliveries(lambda: self.sink) if self.sink is not None else None,
            acl_writer=self._acl_writer,
        )
        app.include_router(export_routes)  # as the service's build_api does
        mount_ui(app, self.settings)
        self.app = app
        return store, app

    def call(self, job: Callable[[], Awaitable[T]], timeout: float = 30) -> T:
        """Run `job` in the server's own event loop (where its store and sink live)."""
        assert self._loop is not None

        async def run() -> T:
            return await job()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)
