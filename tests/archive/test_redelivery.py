"""Redeliveries of messages whose records are durable in the spool are not archived again.

Real broker, real search (behind a relay that cuts it), the file store.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from stacktrail.app import run_pipeline
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores import open_store
from stacktrail.config import Settings
from stacktrail.domain.delivery import Sink
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.ingest.consumer import AmqpSource
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import index_name
from stacktrail.search.sink import SearchSink
from tests.support import search
from tests.support.broker import own_queue_settings, publish, queue_depth
from tests.support.cadf_factory import make_notification
from tests.support.faults import archived_ids, duplicates
from tests.support.tcpproxy import TcpProxy


def _settings(tmp_path: Path, amqp_url: str, search_at: str, index_template: str) -> Settings:
    return own_queue_settings(
        amqp_url,
        amqp_prefetch=500,
        search_url=search_at,
        search_index_template=index_template,
        search_flush_interval="50ms",
        spool_dir=tmp_path / "spool",
        archive_dir=tmp_path / "archive",
        archive_worker="test-worker",
        shutdown_grace="1s",
    )


async def _run_until(
    settings: Settings,
    done: asyncio.Event | None,
    seconds: float,
    consuming: asyncio.Event | None = None,
) -> None:
    stop = asyncio.Event()
    sinks: list[Sink] = [
        SearchSink(SearchClient.from_settings(settings), settings),
        ArchiveSink(settings, open_store(settings), MemoryLedger()),
    ]

    def on_source(source: AmqpSource) -> None:
        async def connected() -> None:
            while not source.connected:  # noqa: ASYNC110 (the source has no event to await)
                await asyncio.sleep(0.05)
            if consuming is not None:
                consuming.set()

        waits.append(asyncio.create_task(connected()))

    waits: list[asyncio.Task[None]] = []
    task = asyncio.create_task(
        run_pipeline(settings, stop, DefaultTrails(settings), sinks, on_source=on_source)
    )
    try:
        if done is not None:
            await asyncio.wait_for(done.wait(), seconds)
        else:
            await asyncio.sleep(seconds)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_stop_with_search_down_does_not_archive_the_redelivery_again(
    tmp_path: Path, amqp_url: str, search_url: str, index_template: str
) -> None:
    target = urlsplit(search_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    await proxy.start()
    settings = _settings(tmp_path, amqp_url, f"http://{proxy.address}", index_template)
    project = uuid.uuid4().hex
    ids = [f"stop-{uuid.uuid4().hex[:8]}-{i}" for i in range(300)]
    now = datetime.now(UTC)
    bodies = [make_notification(event_id=i, initiator_project=project, event_time=now) for i in ids]

    stopped = asyncio.Event()
    consuming = asyncio.Event()

    async def cut_then_publish() -> None:
        await consuming.wait()  # the sinks started (the index template is installed)
        await proxy.stop()
        await publish(amqp_url, bodies)
        await asyncio.sleep(2.0)  # all spooled durably; search still down
        stopped.set()

    feeder = asyncio.create_task(cut_then_publish())
    await _run_until(
        settings, stopped, 30, consuming
    )  # SIGTERM: search down, the archive is durable
    await feeder
    assert await queue_depth(amqp_url, settings.amqp_queue) == len(ids)  # all go back

    await proxy.start()
    where = index_name(index_template, project, now)
    indexed = asyncio.Event()

    async def watch() -> None:
        await search.wait_for_count(search_url, where, len(ids), timeout=30)
        indexed.set()

    watcher = asyncio.create_task(watch())
    await _run_until(settings, indexed, 40)
    await watcher
    assert await queue_depth(amqp_url, settings.amqp_queue) == 0
    copies = archived_ids(settings.archive_dir)
    assert set(copies) == set(ids)
    assert duplicates(copies) == (0, 0)
    await proxy.stop()
