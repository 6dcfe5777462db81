"""A trail of two regions, through the whole pipeline into the dev stack's two real Swift
clusters (RegionOne and RegionTwo behind the same Keystone): both get every event; with
one region cut, the other keeps delivering and the cut one catches up, in order, with
nothing lost. The cut is a relay in front of RegionTwo's proxy (the shared proxy itself
is never touched)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.keystone import KeystoneClient
from tests.support.broker import publish, wait_for_consumer
from tests.support.cadf_factory import make_notification
from tests.support.pipeline import running
from tests.support.polling import eventually
from tests.support.sinks import unpack
from tests.support.stores import keystone_settings, unique
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
def regions(devstack: dict[str, str]) -> tuple[str, str]:
    if "DEVSTACK_SWIFT2_URL" not in devstack:
        pytest.fail("the dev stack has no RegionTwo: run `scripts/dev-stack start`")
    return devstack["DEVSTACK_SWIFT_REGION"], devstack["DEVSTACK_SWIFT2_REGION"]


@pytest.fixture
def settings(
    devstack: dict[str, str],
    regions: tuple[str, str],
    amqp_url: str,
    search_url: str,
    index_template: str,
    tmp_path: Path,
) -> Settings:
    queue = f"st-{uuid.uuid4().hex[:8]}"
    return keystone_settings(
        devstack,
        amqp_url=amqp_url,
        amqp_queue=queue,
        amqp_dead_letter_exchange=f"{queue}.dead",
        amqp_bindings=["nova:notifications.#"],
        search_url=search_url,
        search_index_template=index_template,
        archive_store="swift",
        archive_container=unique("st-regions"),
        archive_format=ArchiveFormat.NDJSON,
        archive_regions=list(regions),
        archive_interval="1s",
        archive_probe_interval="500ms",
        archive_retry_max="30s",
        spool_dir=tmp_path / "spool",
        archive_worker="test-worker",
        shutdown_grace="20s",
    )


@pytest.fixture
async def reader(settings: Settings) -> AsyncIterator[SwiftStore]:
    """Reads both regions straight from the catalog (never through the relay)."""
    store = SwiftStore(KeystoneClient(settings))
    yield store
    await store.aclose()


async def archived(store: SwiftStore, project: str, region: str, container: str) -> list[str]:
    """The event ids of a region's objects, objects in name order (= sealing order)."""
    bucket = Bucket(project, region, container, WriteMode.RESELLER)
    ids: list[str] = []
    for key in sorted(await store.list_keys(bucket)):
        ids += [e["id"] for e in unpack((await store.get(bucket, key)).body, ArchiveFormat.NDJSON)]
    return ids


async def object_names(store: SwiftStore, project: str, region: str, container: str) -> list[str]:
    """The object names of a region with the region taken out (they differ only there)."""
    keys = await store.list_keys(Bucket(project, region, container, WriteMode.RESELLER))
    return sorted(k.replace(region, "<region>") for k in keys)


def batch(project: str, tag: str, count: int) -> tuple[list[str], list[bytes]]:
    now = datetime.now(UTC)
    ids = [f"{tag}-{i:04d}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    return ids, [
        make_notification(event_id=i, initiator_project=project, event_time=now) for i in ids
    ]


async def test_a_trail_of_two_regions_is_delivered_into_both_swifts(
    devstack: dict[str, str], settings: Settings, regions: tuple[str, str], reader: SwiftStore
) -> None:
    project = devstack["DEVSTACK_PROJECT_B_ID"]
    container = settings.archive_container
    ids, bodies = batch(project, "both", 60)
    sink = ArchiveSink(settings, SwiftStore(KeystoneClient(settings)), MemoryLedger())
    async with running(settings, sinks=[sink]):
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, bodies)
        for region in regions:

            async def complete(region: str = region) -> bool:
                return len(await archived(reader, project, region, container)) >= len(ids)

            await eventually(complete, within=60, every=0.5)
    one, two = [await archived(reader, project, r, container) for r in regions]
    assert sorted(one) == sorted(ids)
    assert two == one  # the same objects, the same records, the same order
    assert await object_names(reader, project, regions[0], container) == await object_names(
        reader, project, regions[1], container
    )


async def test_a_cut_region_catches_up_in_order_while_the_other_keeps_delivering(
    devstack: dict[str, str], settings: Settings, regions: tuple[str, str], reader: SwiftStore
) -> None:
    first, second = regions
    project = devstack["DEVSTACK_PROJECT_B_ID"]
    container = settings.archive_container
    keystone = KeystoneClient(settings)
    catalog = await keystone.object_store_endpoints()
    target = urlsplit(catalog[second])
    relay = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)  # not started: cut
    endpoints = {
        first: catalog[first],
        second: catalog[second].replace(target.netloc, relay.address, 1),
    }
    sink = ArchiveSink(settings, SwiftStore(keystone, endpoints=endpoints), MemoryLedger())
    early, early_bodies = batch(project, "early", 40)
    late, late_bodies = batch(project, "late", 40)
    try:
        async with running(settings, sinks=[sink]):
            await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
            await publish(settings.amqp_url, early_bodies)

            async def first_has(count: int) -> bool:
                return len(await archived(reader, project, first, container)) >= count

            await eventually(lambda: first_has(len(early)), within=60, every=0.5)

            def second_failing() -> bool:
                return second in sink.delivery_backoff(project)

            await eventually(second_failing, within=30, every=0.2)
            assert first not in sink.delivery_backoff(project)

            # The cut region's backoff does not hold the other: new events keep arriving
            # in RegionOne within a few delivery intervals.
            published = time.monotonic()
            await publish(settings.amqp_url, late_bodies)
            await eventually(lambda: first_has(len(early) + len(late)), within=60, every=0.5)
            assert time.monotonic() - published < 20
            assert await archived(reader, project, second, container) == []
            assert sink.pending_bytes(project) > 0  # held in the spool for RegionTwo

            await relay.start()  # RegionTwo is back

            async def second_caught_up() -> bool:
                return len(await archived(reader, project, second, container)) >= len(early + late)

            await eventually(second_caught_up, within=60, every=0.5)
            await eventually(lambda: not sink.delivery_backoff(project), within=30, every=0.2)
    finally:
        await relay.stop()
    one = await archived(reader, project, first, container)
    two = await archived(reader, project, second, container)
    assert sorted(one) == sorted(early + late)  # nothing lost, nothing twice
    assert two == one  # caught up in order: the same objects, records and order
    assert await object_names(reader, project, first, container) == await object_names(
        reader, project, second, container
    )
    # everything delivered before the cut ended precedes what came later, in both regions
    assert max(two.index(i) for i in early) < min(two.index(i) for i in late)


async def test_a_black_holed_region_holds_none_of_the_other_regions_upload_slots(
    devstack: dict[str, str], settings: Settings, regions: tuple[str, str], reader: SwiftStore
) -> None:
    """RegionTwo accepts connections and never answers: its uploads hang until their
    timeout (60 s) and fill its own slots; RegionOne's deliveries go on meanwhile."""
    first, second = regions
    settings = settings.model_copy(update={"archive_upload_concurrency": 2})
    project = devstack["DEVSTACK_PROJECT_B_ID"]
    container = settings.archive_container
    keystone = KeystoneClient(settings)
    catalog = await keystone.object_store_endpoints()
    target = urlsplit(catalog[second])
    relay = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    await relay.start()
    relay.black_hole()
    endpoints = {
        first: catalog[first],
        second: catalog[second].replace(target.netloc, relay.address, 1),
    }
    sink = ArchiveSink(settings, SwiftStore(keystone, endpoints=endpoints), MemoryLedger())
    published: list[str] = []
    try:
        async with running(settings, sinks=[sink]):
            await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
            for round_ in range(5):  # more sealed segments than RegionTwo has slots
                ids, bodies = batch(project, f"r{round_}", 10)
                published += ids
                await publish(settings.amqp_url, bodies)

                async def first_has(count: int = len(published)) -> bool:
                    return len(await archived(reader, project, first, container)) >= count

                took = await eventually(first_has, within=30, every=0.2)
                assert took < 10, f"round {round_} reached {first} after {took:.1f} s"
            assert await archived(reader, project, second, container) == []
            await relay.stop()  # the hung connections end; then RegionTwo is back
            await relay.start()
            relay.clear()

            async def second_caught_up() -> bool:
                got = await archived(reader, project, second, container)
                return len(got) >= len(published)

            await eventually(second_caught_up, within=60, every=0.5)
    finally:
        await relay.stop()
    one = await archived(reader, project, first, container)
    assert sorted(one) == sorted(published)
    assert await archived(reader, project, second, container) == one
