"""Composition root: settings -> objects, the task group, and the shutdown order.

The only module that imports every stage. Shutdown (SIGTERM/SIGINT): the API stops
accepting requests, the source stops consuming, what already arrived is dispatched, the
sinks finish within the grace period, what is durable is acked, then connections close.
Whatever is not durable by then stays in RabbitMQ or the spool for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from prometheus_client import make_asgi_app
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from stacktrail.archive.after_others import AfterOtherSinks
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores import ObjectStore, open_store
from stacktrail.archive.uploader import FlushSummary
from stacktrail.config import AuthMode, Settings, reachable_host
from stacktrail.db import engine as db
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.reload import StoreTrails
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import NOTIFICATION_EVENT_TYPES
from stacktrail.domain.backlog import SpoolBacklog
from stacktrail.domain.delivery import Sink
from stacktrail.domain.directory import TrailDirectory
from stacktrail.domain.durations import format_duration
from stacktrail.domain.event_limits import EventLimits
from stacktrail.domain.trail import ArchiveStore
from stacktrail.gc_tuning import tune_gc
from stacktrail.ingest.consumer import AmqpSource, redact
from stacktrail.ingest.dispatcher import Pipeline
from stacktrail.ingest.owners import Owners
from stacktrail.ingest.publisher import EVENT_TYPE, EventPublisher
from stacktrail.ingest.route import Router
from stacktrail.keystone import KeystoneClient, acl_identity
from stacktrail.search.browse import SearchEventBrowser
from stacktrail.search.client import SearchClient
from stacktrail.search.sink import SearchSink
from stacktrail.telemetry.logging import describe
from stacktrail.telemetry.probes import serve_probes
from stacktrail.workers import WorkerDeliveries, Workers, child_delivery_routes

if TYPE_CHECKING:  # the API's modules load only where the API runs
    from stacktrail.api.context import DeliveryControl

log = logging.getLogger(__name__)
T = TypeVar("T")

STATS_INTERVAL = 10.0  # seconds between writes of the event-type catalogue and counters


STARTUP_ABORT_GRACE = 0.5  # seconds a sink gets to stop when SIGTERM comes during start-up
OWNER_LIST_WAIT = 10.0  # seconds consumption waits at start for Keystone's project list


async def until_stopped(stop: asyncio.Event, step: Awaitable[T]) -> bool:
    """Await a start-up step (which may wait and retry for long) unless `stop` comes
    first: then cancel it. True when the step finished, False when stopped."""
    task = asyncio.ensure_future(step)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if task.done():
        task.result()  # its error, if any
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return False


class Role(StrEnum):
    PIPELINE = "pipeline"
    API = "api"
    SCHEDULER = "scheduler"


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def install_flush_handler(services: Services, workers: Workers | None = None) -> None:
    """SIGUSR1 (sent by `stacktrail archive flush`): seal and deliver the spool now, and
    have the child `workers` do the same with theirs."""
    loop = asyncio.get_running_loop()

    async def flush() -> None:
        if services.archive is None:
            log.warning("archive flush requested, but this process runs no archive sink")
            return
        log.info("archive flush requested: sealing every segment and delivering now")
        summary = await services.archive.flush()
        log.info("archive flush: %s", describe_flush(summary))

    def on_signal() -> None:
        task = loop.create_task(flush(), name="archive-flush")
        services.background.append(task)
        if workers is not None:
            workers.signal(signal.SIGUSR1)

    loop.add_signal_handler(signal.SIGUSR1, on_signal)


def _new_sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite URL that does not exist yet (a brand-new embedded database)."""
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or not url.database:
        return None
    path = Path(url.database)
    return None if path.exists() else path


async def prepare_database(settings: Settings) -> None:
    """Create a brand-new embedded SQLite database; refuse an unmigrated existing one."""
    if _new_sqlite_file(settings.database_url) is not None:
        log.info("creating the config database %s", db.display_url(settings.database_url))
        await db.upgrade(settings.database_url, settings=settings)
    await db.check_current(settings.database_url)


def keystone_client(settings: Settings) -> KeystoneClient | None:
    return KeystoneClient(settings) if settings.keystone_url else None


def object_store(settings: Settings, keystone: KeystoneClient | None) -> ObjectStore:
    if settings.archive_store is ArchiveStore.SWIFT and keystone is None:
        raise ValueError("archive_store=swift needs STACKTRAIL_KEYSTONE_URL and credentials")
    return open_store(settings, keystone)


@dataclass
class Services:
    """What the roles share in one process."""

    settings: Settings
    engine: AsyncEngine
    store: TrailStore
    ledger: SqlLedger
    trails: StoreTrails
    keystone: KeystoneClient | None
    publisher: EventPublisher
    archive: ArchiveSink | None = None
    source: AmqpSource | None = None
    workers: Workers | None = None  # the child pipeline workers this process keeps, if any
    background: list[asyncio.Task[Any]] = field(default_factory=list)
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def emit(self, event: dict[str, Any]) -> None:
        """Publish a configuration change as a CADF event into the pipeline's input."""
        event_type = NOTIFICATION_EVENT_TYPES.get(event.get("action", ""), EVENT_TYPE)
        await self.publisher.publish(event, event_type)

    async def close(self) -> None:
        for task in self.background:
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for close in self.closing:
            with contextlib.suppress(Exception):
                await close()
        await self.publisher.close()
        await self.engine.dispose()


async def open_services(settings: Settings) -> Services:
    await prepare_database(settings)
    engine = db.create_engine(settings.database_url)
    store = TrailStore(engine, settings)
    trails = StoreTrails(store, settings)
    await trails.load()
    services = Services(
        settings=settings,
        engine=engine,
        store=store,
        ledger=SqlLedger(engine),
        trails=trails,
        keystone=keystone_client(settings),
        publisher=EventPublisher(settings),
    )
    services.background.append(asyncio.create_task(trails.run_reload(), name="trail-reload"))
    log.info(
        "config store: %s (trail changes applied within %s)",
        db.display_url(settings.database_url),
        format_duration(settings.reload_interval),
    )
    return services


def build_sinks(settings: Settings, services: Services) -> list[Sink]:
    sinks: list[Sink] = []
    if settings.search_enabled:
        sinks.append(SearchSink(SearchClient.from_settings(settings), settings))
        log.info(
            "search sink: bulk indexing into %s (indices %s)",
            settings.search_url,
            settings.search_index_template,
        )
    else:
        log.info("search sink off (STACKTRAIL_SEARCH_URL is empty)")
    store = object_store(settings, services.keystone)
    services.archive = ArchiveSink(settings, store, services.ledger, directory=services.trails)
    sinks.append(services.archive)
    where = (
        settings.archive_dir
        if settings.archive_store is ArchiveStore.FILE
        else (settings.archive_store.value)
    )
    log.info(
        "archive sink: spool %s, delivering to %s every %s by default",
        settings.spool_dir,
        where,
        format_duration(settings.archive_interval),
    )
    return sinks


def owner_check(settings: Settings, services: Services) -> Owners | None:
    """The owner check, on by default where Keystone is configured."""
    if not settings.owner_check or services.keystone is None:
        return None
    return Owners.from_settings(services.keystone, services.trails, settings)


async def _flush_stats_periodically(pipeline: Pipeline, ledger: SqlLedger) -> None:
    while True:
        await asyncio.sleep(STATS_INTERVAL)
        try:
            await pipeline.flush_stats(ledger)
        except Exception as exc:  # counters are best effort; the events are not affected
            log.warning("could not record ingest counters: %s", describe(exc))


async def _relist_owners_periodically(owners: Owners, first: asyncio.Future[bool]) -> None:
    await first
    while True:
        await asyncio.sleep(owners.relist_interval)
        await owners.learn_all()


async def run_pipeline(
    settings: Settings,
    stop: asyncio.Event,
    directory: TrailDirectory,
    sinks: list[Sink],
    *,
    stats: SqlLedger | None = None,
    on_source: Callable[[AmqpSource], None] | None = None,
    owners: Owners | None = None,
) -> None:
    """Consume until `stop`, then shut down in order (see the module docstring)."""
    # the archive's writes are not idempotent: it takes a message's records last
    sinks = [AfterOtherSinks(s) if isinstance(s, ArchiveSink) else s for s in sinks]
    started: list[Sink] = []
    for sink in sinks:
        if not await until_stopped(stop, sink.start()):
            log.info("stopping during start-up: the %s sink was not ready yet", sink.name)
            # nothing was consumed yet; what the spool holds stays for the next start
            await asyncio.gather(*(s.stop(STARTUP_ABORT_GRACE) for s in started))
            return
        started.append(sink)
    source = AmqpSource(settings)
    if on_source is not None:
        on_source(source)
    pipeline = Pipeline(
        source,
        Router(directory, default_exclude=settings.events_default_exclude),
        sinks,
        limits=EventLimits.from_settings(settings),
        dead_letter_noise=settings.amqp_dead_letter_noise,
        owners=owners,
        gc_threshold=settings.pipeline_gc_threshold,
    )
    listing: asyncio.Future[bool] | None = None
    if owners is not None:
        log.info("owner check: events of projects Keystone does not know go to the unscoped trail")
        # Known before the first message: thousands of active projects would otherwise
        # cost a question each, their messages waiting (see ingest/dispatcher.py). A slow
        # Keystone delays the start by OWNER_LIST_WAIT at most; its lists land later.
        listing = asyncio.ensure_future(owners.learn_all())
        if not await until_stopped(stop, asyncio.wait({listing}, timeout=OWNER_LIST_WAIT)):
            listing.cancel()
            log.info("stopping during start-up: Keystone's project list had not come yet")
            await asyncio.gather(*(s.stop(STARTUP_ABORT_GRACE) for s in started))
            return
    log.info(
        "pipeline starting: RabbitMQ %s queue %r", redact(settings.amqp_url), settings.amqp_queue
    )
    source_task = asyncio.create_task(source.run(stop), name="amqp-source")
    dispatch_task = asyncio.create_task(pipeline.run(), name="dispatch")
    stats_task = (
        asyncio.create_task(_flush_stats_periodically(pipeline, stats))
        if stats is not None
        else None
    )
    relist_task = (
        asyncio.create_task(_relist_owners_periodically(owners, listing))
        if owners is not None and listing is not None
        else None
    )
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
    for task in (stats_task, relist_task):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if stats is not None:
        with contextlib.suppress(Exception):
            await pipeline.flush_stats(stats)
    # Messages whose records resolved RETRY (search down at the stop) are finished for
    # the pipeline but not acked: the source counts what really goes back to the queue.
    log.info(
        "pipeline stopped (%d messages left unacked for redelivery)",
        source.left_unacked,
    )


def _readiness(services: Services) -> dict[str, Callable[[], Awaitable[bool]]]:
    settings = services.settings
    checks: dict[str, Callable[[], Awaitable[bool]]] = {}

    async def broker() -> bool:
        if services.source is not None:
            return services.source.connected
        return True  # this process does not consume

    checks["broker"] = broker

    async def acks() -> bool:
        """Not ready while a consumed message waits too long for its ack (acks stalled)."""
        source = services.source
        limit = settings.amqp_unacked_max_age.total_seconds()
        age = source.oldest_unacked_age() if source is not None else 0.0
        if age > limit:
            raise RuntimeError(
                f"acks stalled: the oldest unacked message has waited {age:.0f}s (limit {limit:g}s)"
            )
        return True

    checks["acks"] = acks
    keystone = services.keystone
    if keystone is not None:

        async def service_credentials() -> bool:
            """The service identity gets a token (a wrong password fails here)."""
            await keystone.service_token()
            return True

        checks["keystone"] = service_credentials
    store_probe = _archive_probe(settings, keystone)

    async def archive() -> bool:
        """The store answers (see `_archive_probe`), and the archive sink is not stuck:
        not ready while the spool is full (consumption paused) or deliveries have failed
        longer than STACKTRAIL_ARCHIVE_UNREADY_AFTER."""
        if store_probe is not None:
            await store_probe()
        sink = services.archive
        problem = sink.health(settings.archive_unready_after.total_seconds()) if sink else ""
        if problem:
            raise RuntimeError(problem)
        return True

    checks["archive"] = archive
    if services.workers is not None:
        checks["workers"] = services.workers.ready
    if settings.search_enabled:
        # one client for every probe: its connection stays open between them
        probe_client = SearchClient.from_settings(settings)
        services.closing.append(probe_client.close)

        async def search() -> bool:
            await probe_client.ping()
            return True

        checks["search"] = search
    return checks


def _archive_probe(
    settings: Settings, keystone: KeystoneClient | None
) -> Callable[[], Awaitable[bool]] | None:
    """The readiness check of the archive store: the file root is writable; Swift is in
    the catalog for every region and accepts the service token. (S3: not checked.)"""
    if settings.archive_store is ArchiveStore.FILE:
        root = Path(settings.archive_dir)

        async def file_root() -> bool:
            await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
            if not os.access(root, os.W_OK | os.X_OK):
                raise RuntimeError(f"the archive directory {root} is not writable")
            return True

        return file_root
    if settings.archive_store is ArchiveStore.SWIFT and keystone is not None:

        async def swift() -> bool:
            endpoints = await keystone.object_store_endpoints()
            missing = [r for r in settings.archive_regions if r not in endpoints]
            if missing:
                raise RuntimeError(f"no object-store endpoint for {', '.join(missing)}")
            token = await keystone.service_token()
            async with httpx.AsyncClient(timeout=5.0) as client:
                for region in settings.archive_regions:
                    answer = await client.head(
                        endpoints[region].rstrip("/"), headers={"X-Auth-Token": token}
                    )
                    if answer.status_code >= 300:
                        raise RuntimeError(
                            f"Swift in {region} answered {answer.status_code} to the "
                            "service account"
                        )
            return True

        return swift
    return None


class SinkDeliveries:
    """`DeliveryControl` on this process's archive sink."""

    def __init__(self, sink: Callable[[], ArchiveSink | None]) -> None:
        self._sink = sink

    async def next_retries(self, project_id: str) -> dict[str, datetime]:
        sink = self._sink()
        if sink is None:
            return {}
        now_wall, now_mono = time.time(), time.monotonic()
        return {
            region: datetime.fromtimestamp(now_wall + max(state.until - now_mono, 0.0), UTC)
            for region, state in sink.delivery_backoff(project_id).items()
        }

    async def retry_now(self, project_id: str) -> int:
        sink = self._sink()
        return sink.retry_now(project_id) if sink is not None else 0

    async def backlog(self, project_id: str) -> SpoolBacklog:
        sink = self._sink()
        if sink is None:
            return SpoolBacklog(0, 0, None, 0, failing=False, held_back=False)
        return sink.backlog(project_id)


def acl_writer_of(settings: Settings) -> Callable[[], Awaitable[str | None]] | None:
    """The ACL-mode writer as Swift's ACL names it, asked of Keystone once."""
    identity = acl_identity(settings)
    if identity is None or not settings.keystone_url:
        return None
    known: list[str] = []

    async def writer() -> str | None:
        if not known:
            try:
                project, user = await KeystoneClient(settings, identity).own_ids()
            except Exception as exc:
                log.warning("cannot name the ACL writer's ids: %s", exc)
                return None
            known.append(f"{project}:{user}")
        return known[0]

    return writer


def build_api(services: Services) -> Any:
    from stacktrail.api import create_app
    from stacktrail.api.routes.exports import router as export_routes
    from stacktrail.web import mount_ui

    settings = services.settings
    keystone = services.keystone
    if settings.auth_mode is AuthMode.KEYSTONE and keystone is None:
        raise ValueError(
            "the API validates Keystone tokens: set STACKTRAIL_KEYSTONE_URL and the "
            "service credentials, or STACKTRAIL_AUTH_MODE=noauth for local use"
        )

    # with child workers, a project's records are spread over every worker's spool
    workers = services.workers
    deliveries: DeliveryControl | None = None
    if services.archive is not None:
        deliveries = SinkDeliveries(lambda: services.archive)
        if workers is not None:
            deliveries = WorkerDeliveries(deliveries, workers.children)

    async def pending(project_id: str, region: str) -> int | None:
        archive = services.archive
        if archive is None or deliveries is None:
            return None
        if workers is not None:
            return (await deliveries.backlog(project_id)).bytes
        return archive.pending_bytes(project_id)

    events = None
    if settings.search_enabled:
        search = SearchClient.from_settings(settings)
        services.closing.append(search.close)
        events = SearchEventBrowser(search, settings.search_index_template)
    app = create_app(
        settings,
        services.store,
        keystone,
        ledger=services.ledger,
        emit=services.emit,
        pending_spool_bytes=pending,
        readiness=_readiness(services),
        events=events,
        delivery=deliveries,
        acl_writer=acl_writer_of(settings),
    )
    app.include_router(export_routes)
    mount_ui(app, settings)
    # Prometheus scrapes the pipeline's counters here (no auth: counts only, no event data).
    app.mount("/metrics", make_asgi_app())
    return app


def ui_url(settings: Settings) -> str:
    """The address to open the UI at (a wildcard listen address is opened as localhost)."""
    return f"http://{reachable_host(settings.api_host)}:{settings.api_port}/"


def api_unavailable(settings: Settings) -> str | None:
    """Why the API cannot run with these settings (it never runs unauthenticated by accident)."""
    if settings.auth_mode is AuthMode.KEYSTONE and not settings.keystone_url:
        return (
            "the API validates Keystone tokens: set STACKTRAIL_KEYSTONE_URL and the service "
            "credentials (or STACKTRAIL_AUTH_MODE=noauth on a development machine)"
        )
    return None


async def run(settings: Settings, roles: set[Role], *, explicit: bool = False) -> None:
    """Run the roles; the API is skipped with a warning when Keystone is not configured,
    unless it was asked for explicitly (then that is an error)."""
    reason = api_unavailable(settings) if Role.API in roles else None
    if reason:
        if explicit:
            raise ValueError(reason)
        log.warning(
            "not starting the API and web UI: %s; to try it on this machine: "
            "stacktrail run --local",
            reason,
        )
        roles = roles - {Role.API}
    stop = asyncio.Event()
    install_signal_handlers(stop)
    opening = asyncio.ensure_future(open_services(settings))
    if not await until_stopped(stop, opening):
        log.info("stopping during start-up: the config store was not open yet")
        return
    services = opening.result()
    # the children of STACKTRAIL_WORKERS, and former workers' spools to deliver
    workers = Workers(settings, settings.workers) if Role.PIPELINE in roles else None
    # set only with children: readiness and the API ask them through it
    services.workers = workers if settings.workers > 1 else None
    install_flush_handler(services, workers)
    tasks: list[asyncio.Task[None]] = []
    try:
        if Role.PIPELINE in roles:
            sinks = build_sinks(settings, services)
            tasks.append(
                asyncio.create_task(
                    run_pipeline(
                        settings,
                        stop,
                        services.trails,
                        sinks,
                        stats=services.ledger,
                        on_source=lambda s: setattr(services, "source", s),
                        owners=owner_check(settings, services),
                    ),
                    name="pipeline",
                )
            )
        if workers is not None:
            tasks.append(asyncio.create_task(workers.run(stop), name="workers"))
        if Role.API in roles:
            from stacktrail.api import serve

            app = build_api(services)

            def listening() -> None:
                log.info("API and web UI listening on %s", settings.api_listen)
                print(f"stacktrail: open {ui_url(settings)} in a browser", flush=True)

            tasks.append(
                asyncio.create_task(serve(app, settings, stop, on_listening=listening), name="api")
            )
        if Role.SCHEDULER in roles:
            tasks.append(asyncio.create_task(run_scheduler_role(services, stop), name="scheduler"))
        if Role.API not in roles:
            # the API serves these itself; without it, they get a listener of their own
            checks = {"database": services.store.ping, **_readiness(services)}
            log.info("/healthz, /readyz and /metrics on http://%s", settings.metrics_listen)
            tasks.append(
                asyncio.create_task(
                    serve_probes(
                        checks,
                        settings.metrics_host,
                        settings.metrics_port,
                        stop,
                        # a child worker answers its parent's API about its spool
                        child_delivery_routes(SinkDeliveries(lambda: services.archive))
                        if settings.worker_number > 0
                        else (),
                    ),
                    name="probes",
                )
            )
        tune_gc()
        await _supervise(tasks, stop)
    finally:
        await services.close()


async def flush_archive(settings: Settings, deadline: float | None = None) -> str:
    """`stacktrail archive flush`: deliver the spool now, here or in the running service."""
    from stacktrail.archive.sink import flush_spool
    from stacktrail.archive.spool.spool import SpoolLockedError, lock_holder

    await prepare_database(settings)
    engine = db.create_engine(settings.database_url)
    keystone = keystone_client(settings)
    store = object_store(settings, keystone)
    try:
        summary = await flush_spool(settings, store, SqlLedger(engine), deadline=deadline)
    except SpoolLockedError:
        pid = lock_holder(Path(settings.spool_dir))
        if pid is None:
            raise
        os.kill(pid, signal.SIGUSR1)
        return (
            f"the running stacktrail (pid {pid}) was asked to flush now; its log shows the result"
        )
    finally:
        await store.aclose()
        await engine.dispose()
    return describe_flush(summary)


def describe_flush(summary: FlushSummary) -> str:
    """A flush round for people (the log and `stacktrail archive flush`)."""
    text = (
        f"delivered {summary.objects} objects ({summary.records} events, {summary.bytes} bytes)"
        f"; {summary.remaining_segments} segments ({summary.remaining_bytes} bytes) stay spooled"
    )
    if summary.expired:
        text += f"; {summary.expired} past their retention on arrival, dropped"
    for error in summary.errors:
        text += f"\n  project {error.project_id} region {error.region}: {error.message}"
    return text


async def _supervise(tasks: list[asyncio.Task[None]], stop: asyncio.Event) -> None:
    """Run the roles; if one fails, stop the others in order and re-raise its error."""
    if not tasks:
        return
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        error = failed[0].exception()
        assert error is not None
        raise error
    await asyncio.gather(*tasks)


async def run_scheduler_role(services: Services, stop: asyncio.Event) -> None:
    from stacktrail.scheduler import SchedulerConfig, run_scheduler

    settings = services.settings
    config = SchedulerConfig(
        settle=settings.search_delivery_settle,
        search_retention=settings.search_retention_enabled,
        search_retention_every=settings.search_retention_interval,
        archive_expiry=settings.archive_expiry_enabled,
        archive_expiry_every=settings.archive_expiry_interval,
    )
    search = SearchClient.from_settings(settings) if settings.search_enabled else None
    store = object_store(settings, services.keystone)
    try:
        await run_scheduler(
            settings, services.store, search, store, stop, config=config, ledger=services.ledger
        )
    finally:
        if search is not None:
            await search.close()
        await store.aclose()
