"""The archive sink against real Swift through a relay that cuts it: recovery speed."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from prometheus_client import REGISTRY

from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat
from stacktrail.keystone import KeystoneClient
from tests.support.sinks import (
    BEFORE_MIDNIGHT,
    REGION,
    Acks,
    make_event,
    make_trail,
    sink_settings,
    unique,
    unpack,
)
from tests.support.stores import ProjectAdmin
from tests.support.tcpproxy import TcpProxy

FAILED = {"outcome": "failed"}
DELIVERED = {"outcome": "delivered"}


async def test_uploads_resume_within_two_seconds_of_swift_returning(
    tmp_path: Path,
    devstack: dict[str, str],
    keystone: KeystoneClient,
    swift_store: SwiftStore,
    admin_b: ProjectAdmin,
) -> None:
    """A long backoff does not outlast the outage: a probe sees Swift back at once."""
    swift = urlsplit(devstack["DEVSTACK_SWIFT_URL"])
    proxy = TcpProxy(swift.hostname or "127.0.0.1", swift.port or 80)  # not started: refused
    store = SwiftStore(keystone, endpoints={REGION: f"http://{proxy.address}/v1/AUTH_service"})
    settings = sink_settings(
        tmp_path, archive_retry_max=timedelta(minutes=5), archive_probe_interval="500ms"
    )
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    acks = Acks()
    project = admin_b.project_id
    container = unique("st-resume")
    trail = make_trail(project, container, interval=timedelta(seconds=1))
    events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(20)]
    try:
        for event in events:
            await sink.put(acks.record(trail, event))
        await acks.wait(len(events))
        # Let the delivery fail until its next attempt is far away (> 5 s).
        deadline = time.monotonic() + 30
        while True:
            waits = [b.until - time.monotonic() for b in sink.delivery_backoff(project).values()]
            if waits and max(waits) > 5:
                break
            assert time.monotonic() < deadline, "the delivery never backed off"
            await asyncio.sleep(0.1)
        assert "archive deliveries have failed for" in sink.health(failing_for=1)
        assert (REGISTRY.get_sample_value("stacktrail_archive_uploads_total", FAILED) or 0) > 0
        delivered = REGISTRY.get_sample_value("stacktrail_archive_uploads_total", DELIVERED) or 0
        await proxy.start()  # Swift is back
        back = time.monotonic()
        while sink.pending_bytes(project):
            assert time.monotonic() - back < 10, "uploads did not resume"
            await asyncio.sleep(0.05)
        resumed = time.monotonic() - back
        assert resumed <= 2.0, f"uploads resumed {resumed:.1f} s after Swift came back"
        assert sink.health(failing_for=1) == ""
        after = REGISTRY.get_sample_value("stacktrail_archive_uploads_total", DELIVERED) or 0
        assert after > delivered
    finally:
        await sink.stop(1)
        await proxy.stop()
        await store.aclose()
    bucket = Bucket(project, REGION, container)
    archived = []
    for key in await swift_store.list_keys(bucket):
        archived.extend(unpack((await swift_store.get(bucket, key)).body, ArchiveFormat.JSON))
    assert sorted(e["id"] for e in archived) == sorted(e.id for e in events)
