"""The scheduler: one leader across processes runs the periodic jobs.

`run_scheduler` waits for the leader lock (jobs/leader.py); while it holds it, it runs:

- export jobs asked for through the API (jobs/export_jobs.py), one at a time, resuming
  any a previous leader left unfinished;
- search-sourced delivery (jobs/search_delivery.py), every `tick`;
- search retention (jobs/retention.py), every `search_retention_every`;
- archive retention updates after retention changes (jobs/archive_retention.py);
- for stores that do not expire objects themselves (S3, file), the expiry sweep
  (jobs/expiry.py), every `archive_expiry_every`;
- the signed archive digests (archive/digests.py), every `tick`, when
  `STACKTRAIL_DIGEST_KEY_FILE` is set;
- a heartbeat in `scheduler_state` (`leader`: holder, host, pid, since, heartbeat).

Every duty keeps its progress in the config store, so when the leader dies (its lock is
released by the database or the kernel) the next leader continues where it stopped.
The leader checks its lock every `lock_check` seconds and stops acting at once when it
is lost. A duty that fails is logged and tried again at its next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.expiry import ArchiveExpiry
from stacktrail.archive.export_jobs import run_export_job
from stacktrail.archive.retention import ArchiveRetention, get_state, set_state
from stacktrail.archive.search_delivery import SearchDelivery
from stacktrail.archive.stores.base import ObjectStore
from stacktrail.config import Settings
from stacktrail.db.export_jobs import ExportJobs
from stacktrail.db.leader import LeaderLock, leader_lock
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.ledger import DeliveryLedger
from stacktrail.domain.timeframe import iso
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import SearchLayout
from stacktrail.search.reader import EventReader
from stacktrail.search.retention import (
    StoreRetention,
    apply_search_retention,
    plan_search_retention,
)
from stacktrail.signing import load_signing_key

log = logging.getLogger(__name__)

LEADER_STATE = "leader"


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """How often the scheduler does what (not settings: sensible for every cloud)."""

    tick: float = 15.0  # seconds between rounds of delivery / retention-update checks
    lock_retry: float = 5.0  # seconds a follower waits between attempts at the lock
    lock_check: float = 5.0  # seconds between the leader's checks that it still leads
    settle: timedelta = timedelta(minutes=2)  # search-sourced windows end this long ago
    search_retention_every: timedelta = timedelta(hours=1)
    search_retention: bool = True  # False: indices are never deleted by this scheduler
    archive_expiry: bool = True  # False: archived objects are never deleted by this scheduler
    archive_expiry_every: timedelta = timedelta(hours=1)
    page_size: int = 2000  # documents per search page
    keep_alive: str = "5m"  # point in time / scroll keep-alive between pages


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    holder: str
    host: str
    pid: int
    since: str
    heartbeat: str


async def leader_info(engine: AsyncEngine) -> LeaderInfo | None:
    """Who leads (or led last), from the heartbeat in the config store."""
    value = await get_state(engine, LEADER_STATE)
    if not isinstance(value, dict):
        return None
    return LeaderInfo(
        holder=str(value.get("holder", "")),
        host=str(value.get("host", "")),
        pid=int(value.get("pid", 0)),
        since=str(value.get("since", "")),
        heartbeat=str(value.get("heartbeat", "")),
    )


async def _sleep(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds` or until `stop`; True when stopped."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(seconds, 0.0)):
            await stop.wait()
    return stop.is_set()


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        store: TrailStore,
        search: SearchClient | None,
        objects: ObjectStore,
        *,
        config: SchedulerConfig | None = None,
        ledger: DeliveryLedger | None = None,
        holder: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.config = config or SchedulerConfig()
        self.store = store
        self.search = search
        self.objects = objects
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock = clock
        self.jobs = ExportJobs(store.engine)
        self.delivery: SearchDelivery | None = None
        if search is not None:
            self.delivery = SearchDelivery(
                store,
                search,
                objects,
                template=SearchLayout.from_settings(settings),
                settle=self.config.settle,
                ledger=ledger,
                reader_factory=self._reader,
                max_bytes=settings.archive_segment_max_bytes,
            )
        self.archive_retention = ArchiveRetention(store, objects)
        self.archive_expiry = ArchiveExpiry(store, objects)
        self.ledger = ledger
        self.digests: DigestWriter | None = None
        if settings.digest_key_file is not None:
            self.digests = DigestWriter(
                store,
                objects,
                load_signing_key(settings.digest_key_file),
                interval=settings.digest_interval,
                default_regions=tuple(settings.archive_regions),
            )
        self._since = iso(clock())

    def _reader(self) -> EventReader:
        assert self.search is not None
        return EventReader(
            self.search, page_size=self.config.page_size, keep_alive=self.config.keep_alive
        )

    # --- one round of each duty (tests call these directly)

    async def run_export_jobs(self) -> int:
        """Run every due export job; returns how many were run."""
        if self.search is None:
            return 0
        count = 0
        while (job := await self.jobs.next_due(self.clock())) is not None:
            await run_export_job(
                self.jobs,
                job,
                self.search,
                self.objects,
                template=SearchLayout.from_settings(self.settings),
                reader=self._reader(),
                now=self.clock,
                on_written=self.ledger.record_delivery if self.ledger is not None else None,
            )
            count += 1
            latest = await self.jobs.get(job.id)
            if latest is not None and not latest.finished:
                break  # waiting for a retry: do not spin on it
        return count

    async def run_search_delivery(self) -> int:
        if self.delivery is None:
            return 0
        return await self.delivery.deliver_due(self.clock())

    async def run_search_retention(self) -> int:
        if self.search is None:
            return 0
        plan = await plan_search_retention(
            self.search,
            SearchLayout.from_settings(self.settings),
            StoreRetention(self.store),
            self.clock(),
        )
        return await apply_search_retention(self.search, plan)

    async def run_archive_retention(self) -> int:
        await self.archive_retention.detect_changes(self.clock())
        return await self.archive_retention.run_pending()

    async def run_archive_expiry(self) -> int:
        return (await self.archive_expiry.sweep(self.clock())).deleted

    async def run_digests(self) -> int:
        """Write the archive digests of every period that ended (empty ones too)."""
        if self.digests is None:
            return 0
        return await self.digests.run_due(self.clock())

    async def heartbeat(self) -> None:
        await set_state(
            self.store.engine,
            LEADER_STATE,
            {
                "holder": self.holder,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": self._since,
                "heartbeat": iso(self.clock()),
            },
        )

    # --- leading

    async def _every(
        self, name: str, seconds: float, duty: Callable[[], Awaitable[Any]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                await duty()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler: %s failed; tried again in %.0f s", name, seconds)
            if await _sleep(stop, seconds):
                return

    async def lead(self, lock: LeaderLock, stop: asyncio.Event) -> None:
        """Act until `stop` or until the lock is lost."""
        self._since = iso(self.clock())
        log.info("scheduler: leading as %s", self.holder)
        cfg = self.config
        duties: list[tuple[str, float, Callable[[], Awaitable[Any]]]] = [
            ("heartbeat", cfg.tick, self.heartbeat),
            ("export jobs", cfg.tick, self.run_export_jobs),
            ("search delivery", cfg.tick, self.run_search_delivery),
            ("archive retention", cfg.tick, self.run_archive_retention),
        ]
        if self.digests is not None:
            duties.append(("archive digests", cfg.tick, self.run_digests))
        if cfg.search_retention:
            every = cfg.search_retention_every.total_seconds()
            duties.append(("search retention", every, self.run_search_retention))
        if cfg.archive_expiry and not self.objects.expires_objects:
            every = cfg.archive_expiry_every.total_seconds()
            duties.append(("archive expiry", every, self.run_archive_expiry))
        tasks = [
            asyncio.create_task(self._every(name, every, duty, stop), name=f"scheduler-{name}")
            for name, every, duty in duties
        ]
        try:
            while not stop.is_set():
                if await _sleep(stop, cfg.lock_check):
                    break
                if not await lock.still_held():
                    log.error("scheduler: the leader lock was lost; stopping at once")
                    break
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def run_scheduler(
    settings: Settings,
    store: TrailStore,
    search: SearchClient | None,
    object_store: ObjectStore,
    stop_event: asyncio.Event,
    *,
    config: SchedulerConfig | None = None,
    ledger: DeliveryLedger | None = None,
    lock: LeaderLock | None = None,
    holder: str | None = None,
) -> None:
    """Wait for the leader lock, lead until it is lost or `stop_event`, and so on."""
    scheduler = Scheduler(
        settings, store, search, object_store, config=config, ledger=ledger, holder=holder
    )
    lock = lock or leader_lock(store.engine)
    waiting_logged = False
    try:
        while not stop_event.is_set():
            try:
                acquired = await lock.try_acquire()
            except Exception as exc:
                log.warning("scheduler: cannot try the leader lock: %s", exc)
                acquired = False
            if not acquired:
                if not waiting_logged:
                    log.info("scheduler: another process leads; %s waits", scheduler.holder)
                    waiting_logged = True
                await _sleep(stop_event, scheduler.config.lock_retry)
                continue
            waiting_logged = False
            try:
                await scheduler.lead(lock, stop_event)
            finally:
                if stop_event.is_set():
                    await lock.release()
    finally:
        await lock.release()
        log.info("scheduler %s stopped", scheduler.holder)
