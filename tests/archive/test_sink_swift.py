"""The archive sink against real Swift behind real Keystone: expiry, crashes, outages, ACLs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from stacktrail.archive.layout import object_key
from stacktrail.archive.sink import ArchiveSink, flush_spool
from stacktrail.archive.spool import SegmentSpec, Spool
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.errors import PermanentError
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.keystone import KeystoneClient
from tests.support.paths import REPO_ROOT
from tests.support.sinks import (
    BEFORE_MIDNIGHT,
    REGION,
    Acks,
    make_event,
    make_trail,
    sink_settings,
    still_waiting,
    unique,
    unpack,
)
from tests.support.stores import AclIdentity, ProjectAdmin
from tests.support.tcpproxy import TcpProxy

REPO = REPO_ROOT


async def test_objects_expire_at_their_delete_at(
    tmp_path: Path, swift_store: SwiftStore, admin_a: ProjectAdmin
) -> None:
    settings = sink_settings(tmp_path)
    expires = int(time.time()) + 3
    sink = ArchiveSink(settings, swift_store, MemoryLedger(), delete_at=lambda spec: expires)
    await sink.start()
    acks = Acks()
    container = unique("st-expire")
    trail = make_trail(admin_a.project_id, container)
    await sink.put(acks.record(trail, make_event(admin_a.project_id, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    assert (await sink.flush()).objects == 1
    await sink.stop(1)
    bucket = Bucket(admin_a.project_id, REGION, container)
    (key,) = await swift_store.list_keys(bucket)
    assert (await swift_store.get(bucket, key)).headers["x-delete-at"] == str(expires)

    await asyncio.sleep(max(expires - time.time(), 0) + 1.1)
    with pytest.raises(PermanentError) as gone:
        await swift_store.get(bucket, key)
    assert gone.value.status == 404
    assert await swift_store.list_keys(bucket) == [key]  # until the expirer runs
    expire = await asyncio.create_subprocess_exec(
        REPO / "scripts" / "dev-stack", "expire", stdout=asyncio.subprocess.DEVNULL
    )
    assert await expire.wait() == 0
    assert await swift_store.list_keys(bucket) == []
    assert admin_a.listing(container) == []


async def test_a_project_without_the_grant_does_not_hold_the_others(
    tmp_path: Path, acl_identity: AclIdentity, admin_a: ProjectAdmin, admin_b: ProjectAdmin
) -> None:
    """ACL mode with a service identity that has no reseller role (only grants help)."""
    container = unique("st-acl")
    assert admin_a.request("PUT", container).status_code in (201, 202)  # no grant
    created = admin_b.request("PUT", container, headers={"X-Container-Write": acl_identity.grant})
    assert created.status_code in (201, 202)

    settings = sink_settings(tmp_path)
    ledger = MemoryLedger()
    store = acl_identity.swift_store()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    a, b = admin_a.project_id, admin_b.project_id
    for project in (a, b):
        trail = make_trail(project, container, write_mode=WriteMode.ACL)
        for i in range(5):
            await sink.put(acks.record(trail, make_event(project, BEFORE_MIDNIGHT, i)))
    await acks.wait(10)
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}  # both are spooled durably

    summary = await sink.flush()
    assert summary.objects == 1
    assert [e.project_id for e in summary.errors] == [a]
    (error,) = [e for e in ledger.errors if e.project_id == a]
    assert f"container {container} in project {a} does not grant write" in error.message
    assert not [e for e in ledger.errors if e.project_id == b]
    assert len(admin_b.listing(container)) == 1
    assert admin_a.listing(container) == []
    assert sink.pending_bytes(a) > 0
    assert sink.pending_bytes(b) == 0

    # the customer grants write: A's spooled events go out, nothing was lost
    granted = admin_a.request("POST", container, headers={"X-Container-Write": acl_identity.grant})
    assert granted.status_code == 204
    assert (await sink.flush()).objects == 1
    assert sink.pending_bytes(a) == 0
    (key,) = admin_a.listing(container)
    body = admin_a.request("GET", f"{container}/{key}").content
    assert len(unpack(body, ArchiveFormat.JSON)) == 5
    await sink.stop(1)
    await store.aclose()


async def test_swift_unreachable_fills_the_spool_then_put_waits(
    tmp_path: Path,
    devstack: dict[str, str],
    keystone: KeystoneClient,
    swift_store: SwiftStore,
    admin_b: ProjectAdmin,
) -> None:
    swift = urlsplit(devstack["DEVSTACK_SWIFT_URL"])
    proxy = TcpProxy(swift.hostname or "127.0.0.1", swift.port or 80)  # not started: refused
    store = SwiftStore(keystone, endpoints={REGION: f"http://{proxy.address}/v1/AUTH_service"})
    settings = sink_settings(tmp_path, spool_max_bytes=1 << 16, archive_segment_max_bytes=8 << 10)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    project = admin_b.project_id
    container = unique("st-outage")
    trail = make_trail(project, container)
    events = []
    blocked = None
    for i in range(500):
        event = make_event(project, BEFORE_MIDNIGHT, i)
        events.append(event)
        put = asyncio.create_task(sink.put(acks.record(trail, event)))
        if await still_waiting(sink, put):
            blocked = put
            break
    assert blocked is not None, "put never waited although Swift is unreachable"
    room = settings.spool_max_bytes - sink.pending_bytes(project)
    assert 0 <= room < settings.archive_segment_max_bytes
    assert any("unreachable" in e.message for e in ledger.errors)
    assert Outcome.REJECTED not in acks.outcomes.values()

    await proxy.start()  # Swift is back
    await asyncio.wait_for(blocked, 30)
    await acks.wait(len(events))
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}
    await sink.flush()
    await sink.stop(5)
    await proxy.stop()
    await store.aclose()
    bucket = Bucket(project, REGION, container)
    archived = []
    for key in await swift_store.list_keys(bucket):
        archived.extend(unpack((await swift_store.get(bucket, key)).body, ArchiveFormat.JSON))
    assert sorted(e["id"] for e in archived) == sorted(e.id for e in events)


UPLOADER = textwrap.dedent(
    """
    import asyncio, json, sys
    from stacktrail.keystone import KeystoneClient
    from stacktrail.archive.stores.swift import SwiftStore
    from stacktrail.config import Settings
    from stacktrail.archive.sink import flush_spool
    from stacktrail.domain.ledger import MemoryLedger

    async def main():
        settings = Settings(**json.loads(sys.argv[1]))
        store = SwiftStore(KeystoneClient(settings))
        summary = await flush_spool(settings, store, MemoryLedger())
        print(summary.objects, flush=True)

    asyncio.run(main())
    """
)


async def test_sigkill_during_uploads_then_restart(
    tmp_path: Path,
    service_settings: Settings,
    swift_store: SwiftStore,
    admin_a: ProjectAdmin,
    admin_b: ProjectAdmin,
) -> None:
    settings = sink_settings(tmp_path, service_settings, archive_upload_concurrency=2)
    container = unique("st-crash")
    projects = (admin_a.project_id, admin_b.project_id)
    spool = Spool(settings.spool_dir, segment_max_bytes=1 << 30, max_bytes=1 << 40)
    spool.open()
    expected: dict[str, list[str]] = {}  # object key -> event ids, in order
    for n in range(40):
        project = projects[n % 2]
        day = (BEFORE_MIDNIGHT - timedelta(days=n // 2)).strftime("%Y-%m-%d")
        spec = SegmentSpec.for_trail(project, day, make_trail(project, container))
        events = [make_event(project, BEFORE_MIDNIGHT, i) for i in range(60)]
        spool.write([(spec, orjson.dumps(e.body)) for e in events])
        (seg,) = spool.seal_all()
        key = object_key(spec, REGION, seg.stamp, "test-worker", seg.name)
        expected[key] = [e.id for e in events]
    spool.close()

    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", UPLOADER, json.dumps(settings.model_dump(mode="json"))
    )
    deadline = time.monotonic() + 60

    async def delivered() -> int:
        found = 0
        for project in projects:
            found += len(await swift_store.list_keys(Bucket(project, REGION, container)))
        return found

    while await delivered() < 8:
        assert child.returncode is None, "the uploader finished before it could be killed"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    kept = Spool(settings.spool_dir, segment_max_bytes=1 << 30, max_bytes=1 << 40)
    kept.open()
    left = kept.segments()
    kept.close()
    assert 0 < len(left) < 40

    summary = await flush_spool(settings, swift_store, MemoryLedger())
    assert summary.errors == []
    assert summary.remaining_segments == 0

    stored: dict[str, list[str]] = {}
    for project in projects:
        bucket = Bucket(project, REGION, container)
        for key in await swift_store.list_keys(bucket):
            body = (await swift_store.get(bucket, key)).body
            stored[key] = [e["id"] for e in unpack(body, ArchiveFormat.JSON)]
    assert stored == expected  # every segment once, under its own name, with all its events
    ids = [i for keys in stored.values() for i in keys]
    assert len(ids) == len(set(ids)) == 40 * 60


async def test_each_region_is_confirmed_on_its_own(
    tmp_path: Path,
    devstack: dict[str, str],
    keystone: KeystoneClient,
    admin_a: ProjectAdmin,
) -> None:
    """Two regions (here: two proxies to one Swift); one is down, the other is not held."""
    swift = urlsplit(devstack["DEVSTACK_SWIFT_URL"])
    down = TcpProxy(swift.hostname or "127.0.0.1", swift.port or 80)
    base = devstack["DEVSTACK_SWIFT_URL"]
    store = SwiftStore(
        keystone,
        endpoints={"One": f"{base}/v1/AUTH_x", "Two": f"http://{down.address}/v1/AUTH_x"},
    )
    settings = sink_settings(tmp_path)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    acks = Acks()
    project = admin_a.project_id
    container = unique("st-regions")
    trail = make_trail(project, container, regions=("One", "Two"))
    await sink.put(acks.record(trail, make_event(project, BEFORE_MIDNIGHT)))
    await acks.wait(1)

    summary = await sink.flush()
    assert summary.objects == 1
    assert [(e.region, "unreachable" in e.message) for e in summary.errors] == [("Two", True)]
    assert {d.region for d in ledger.deliveries} == {"One"}
    assert sink.pending_bytes(project) > 0  # kept for region Two
    listed = admin_a.listing(container)
    assert len(listed) == 1
    assert "/One/" in listed[0]
    await sink.stop(0.5)

    # after a restart only region Two is left to deliver
    await down.start()
    again = ArchiveSink(settings, store, ledger)
    await again.start()
    summary = await again.flush()
    assert (summary.objects, summary.errors, summary.remaining_segments) == (1, [], 0)
    assert sorted(k.split("/")[1] for k in admin_a.listing(container)) == ["One", "Two"]
    assert [d.region for d in ledger.deliveries] == ["One", "Two"]
    await again.stop(1)
    await down.stop()
    await store.aclose()


async def test_a_broken_destination_cannot_fill_the_spool_for_everyone(
    tmp_path: Path, acl_identity: AclIdentity, admin_a: ProjectAdmin, admin_b: ProjectAdmin
) -> None:
    """A's container refuses every delivery; B's events keep being spooled, resolved
    (acked) and delivered, because A may hold only its share of the spool."""
    refusing = unique("st-refuses")
    assert admin_a.request("PUT", refusing).status_code in (201, 202)  # no grant
    share = 16 << 10
    settings = sink_settings(tmp_path, spool_max_bytes=64 << 10, spool_project_max_bytes=share)
    store = acl_identity.swift_store()
    sink = ArchiveSink(settings, store, MemoryLedger())
    await sink.start()
    acks = Acks()
    a, b = admin_a.project_id, admin_b.project_id
    trail_a = make_trail(a, refusing, write_mode=WriteMode.ACL)
    trail_b = make_trail(b, unique("st-flows"))
    events = 300  # of each project: ~5 times the whole spool
    b_ids: list[str] = []

    async def feed() -> None:
        for i in range(events):
            await sink.put(acks.record(trail_a, make_event(a, BEFORE_MIDNIGHT, i)))
            b_event = make_event(b, BEFORE_MIDNIGHT, i)
            b_ids.append(b_event.id)
            await sink.put(acks.record(trail_b, b_event))

    try:
        await asyncio.wait_for(feed(), 60)  # before: every put waited for room for ever
        await acks.wait(2 * events)
        assert {acks.outcomes[i] for i in b_ids} == {Outcome.DELIVERED}
        refused = [t for t, o in acks.outcomes.items() if o is Outcome.REJECTED]
        assert refused  # A's overflow is dead-lettered with the reason, not held
        assert all("over its share" in acks.reasons[t] for t in refused)
        assert all(t not in b_ids for t in refused)
        assert sink.pending_bytes(a) <= share + 4096
        await sink.flush()
        delivered = [
            record["id"]
            for key in admin_b.listing(trail_b.archive.container)
            for record in unpack(
                admin_b.request("GET", f"{trail_b.archive.container}/{key}").content,
                ArchiveFormat.JSON,
            )
        ]
        assert sorted(delivered) == sorted(b_ids)
        assert admin_a.listing(refusing) == []
    finally:
        await sink.stop(1)
        await store.aclose()
