"""An event claiming the upper-case form of a real project id reaches nothing of it.

Real RabbitMQ, osmem search and Swift behind Keystone: index names are lower case, so
before ids were case-exact, `B.upper()` landed in B's index and in a phantom Swift
account `AUTH_<B.upper()>`.
"""

from __future__ import annotations

import asyncio
import gzip
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from stacktrail.app import run_pipeline
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import UNSCOPED
from stacktrail.keystone import KeystoneClient
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import index_name
from stacktrail.search.sink import SearchSink
from tests.support import search
from tests.support.broker import publish, queue_depth
from tests.support.cadf_factory import make_notification
from tests.support.sinks import sink_settings, unique
from tests.support.stores import ProjectAdmin


async def wait_for_queue(url: str, queue: str) -> None:
    """Until the pipeline declared its queue (publishes are routed only then)."""
    for _ in range(300):
        try:
            await queue_depth(url, queue)
            return
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError(f"queue {queue} never declared")


async def test_an_upper_case_forgery_reaches_neither_index_nor_account(
    tmp_path: Path,
    amqp_url: str,
    search_url: str,
    index_template: str,
    service_settings: Settings,
    keystone: KeystoneClient,
    admin_b: ProjectAdmin,
) -> None:
    b = admin_b.project_id
    queue = f"st-{uuid.uuid4().hex[:8]}"
    container = unique("st-fold")
    settings = sink_settings(
        tmp_path,
        service_settings,
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["nova:notifications.#"],
        search_url=search_url,
        search_index_template=index_template,
        search_flush_interval="50ms",
        archive_store="swift",
        archive_container=container,
        shutdown_grace="5s",
    )
    store = SwiftStore(keystone)
    archive = ArchiveSink(settings, store, MemoryLedger())
    sinks = [SearchSink(SearchClient.from_settings(settings), settings), archive]
    stop = asyncio.Event()
    task = asyncio.create_task(run_pipeline(settings, stop, DefaultTrails(settings), sinks))
    forged, genuine = f"forged-{uuid.uuid4().hex}", f"genuine-{uuid.uuid4().hex}"
    now = datetime.now(UTC)  # within retention, so the archive takes it
    b_index = index_name(index_template, b, now)
    unscoped_index = index_name(index_template, UNSCOPED, now)
    try:
        await wait_for_queue(amqp_url, queue)
        await publish(
            amqp_url,
            [
                make_notification(event_id=forged, initiator_project=b.upper(), event_time=now),
                make_notification(event_id=genuine, initiator_project=b, event_time=now),
            ],
        )
        assert await search.wait_for_count(search_url, b_index, 1) == 1
        await search.wait_for_count(search_url, unscoped_index, 1)
        assert await search.ids(search_url, b_index) == {genuine}
        assert forged in await search.ids(search_url, unscoped_index)  # routed as unscoped
        await archive.flush()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await store.aclose()

    (key,) = admin_b.listing(container)
    body = gzip.decompress(admin_b.request("GET", f"{container}/{key}").content)
    assert genuine.encode() in body
    assert forged.encode() not in body
    token = await keystone.service_token()
    phantom = admin_b.account_url.replace(f"AUTH_{b}", f"AUTH_{b.upper()}")
    async with httpx.AsyncClient(timeout=30) as http:
        listing = await http.get(f"{phantom}/{container}", headers={"X-Auth-Token": token})
    assert listing.status_code == 404  # no phantom account holds the forged event
