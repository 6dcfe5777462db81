"""Owners that exist: real Keystone decides, real Swift and search show where events land.

Real RabbitMQ (own vhost), Keystone, Swift and the search server.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.base import Bucket
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.directory import DefaultTrails
from stacktrail.domain.errors import ClientError
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import UNSCOPED, ArchiveFormat, WriteMode
from stacktrail.ingest.owners import Owners
from stacktrail.keystone import Identity, KeystoneClient, ProjectKind
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import index_name
from stacktrail.search.sink import SearchSink
from tests.support import search
from tests.support.broker import publish, wait_for_consumer
from tests.support.cadf_factory import make_notification
from tests.support.pipeline import running
from tests.support.sinks import unpack
from tests.support.stores import REGION, keystone_settings, unique


def _admin(devstack: dict[str, str], settings: Settings) -> KeystoneClient:
    """The owner check needs identity:get_project: the cloud admin has it here."""
    identity = Identity(
        devstack["DEVSTACK_CLOUD_ADMIN_USER"],
        devstack["DEVSTACK_CLOUD_ADMIN_PASSWORD"],
        devstack["DEVSTACK_CLOUD_ADMIN_PROJECT"],
    )
    return KeystoneClient(settings, identity)


@pytest.fixture
def settings(
    devstack: dict[str, str], amqp_url: str, search_url: str, index_template: str, tmp_path: Path
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
        search_flush_interval="50ms",
        archive_store="swift",
        archive_container=unique("st-owners"),
        domain_archive_container=unique("st-domains"),
        archive_format=ArchiveFormat.NDJSON,
        archive_regions=[REGION],
        spool_dir=tmp_path / "spool",
        archive_worker="test-worker",
        shutdown_grace="20s",
    )


@pytest.fixture
async def swift(settings: Settings) -> AsyncIterator[SwiftStore]:
    store = SwiftStore(KeystoneClient(settings))
    yield store
    await store.aclose()


async def test_keystone_tells_projects_domains_and_unknown_ids(
    devstack: dict[str, str], settings: Settings
) -> None:
    keystone = _admin(devstack, settings)
    assert await keystone.project_kind(devstack["DEVSTACK_PROJECT_A_ID"]) is ProjectKind.PROJECT
    assert await keystone.project_kind("default") is ProjectKind.DOMAIN
    assert await keystone.project_kind(uuid.uuid4().hex) is ProjectKind.UNKNOWN


async def test_keystone_lists_every_project_and_domain_and_the_owner_check_learns_them(
    devstack: dict[str, str], settings: Settings
) -> None:
    keystone = _admin(devstack, settings)
    kinds = await keystone.project_kinds()
    assert kinds[devstack["DEVSTACK_PROJECT_A_ID"]] is ProjectKind.PROJECT
    assert kinds["default"] is ProjectKind.DOMAIN
    directory = DefaultTrails(settings)
    owners = Owners(keystone, directory, lister=keystone)
    known, new = directory.get(devstack["DEVSTACK_PROJECT_A_ID"]), directory.get(uuid.uuid4().hex)
    assert owners.unanswered([known, new]) == [known.project_id, new.project_id]
    assert await owners.learn_all()
    assert owners.unanswered([known, new]) == [new.project_id]  # only the new one is asked


async def test_a_service_user_that_may_not_list_projects_leaves_one_question_per_owner(
    settings: Settings,
) -> None:
    keystone = KeystoneClient(settings)  # the dev stack's service user: no reader role
    with pytest.raises(ClientError, match="may not list projects"):
        await keystone.project_kinds()
    owners = Owners.from_settings(keystone, DefaultTrails(settings), settings)
    assert not await owners.learn_all()


async def _objects(store: SwiftStore, project: str, container: str) -> list[dict[str, object]]:
    bucket = Bucket(project, REGION, container, WriteMode.RESELLER)
    events: list[dict[str, object]] = []
    for key in await store.list_keys(bucket):
        events += unpack((await store.get(bucket, key)).body, ArchiveFormat.NDJSON)
    return events


async def test_unknown_projects_create_no_account_and_domains_land_where_documented(
    devstack: dict[str, str], settings: Settings, swift: SwiftStore
) -> None:
    now = datetime.now(UTC)
    known = devstack["DEVSTACK_PROJECT_A_ID"]
    unknown = uuid.uuid4().hex
    bodies = [
        make_notification(event_id="of-known", initiator_project=known, event_time=now),
        make_notification(event_id="of-unknown", initiator_project=unknown, event_time=now),
        # a failed login of an unknown user: only the domain is known
        make_notification(
            event_id="of-domain", initiator_project=None, initiator_domain="default", event_time=now
        ),
    ]
    owners = Owners.from_settings(_admin(devstack, settings), DefaultTrails(settings), settings)
    sinks = [
        SearchSink(SearchClient.from_settings(settings), settings),
        ArchiveSink(settings, swift, MemoryLedger()),
    ]
    template = settings.search_index_template
    async with running(settings, sinks=sinks, owners=owners):  # type: ignore[arg-type]
        await wait_for_consumer(settings.amqp_url, settings.amqp_queue)
        await publish(settings.amqp_url, bodies)
        for project, event_id in ((UNSCOPED, "of-unknown"), ("default", "of-domain")):
            index = index_name(template, project, now)
            assert await search.wait_for_count(settings.search_url, index, 1) == 1
            assert await search.missing(settings.search_url, index, {event_id}) == set()
    # shut down: the archive sink delivered what it held
    assert await search.count(settings.search_url, index_name(template, unknown, now)) == 0

    # the unknown project's account was never created: nothing lists in it
    token = await KeystoneClient(settings).service_token()
    async with httpx.AsyncClient(timeout=30) as http:
        listing = await http.get(
            f"{devstack['DEVSTACK_SWIFT_URL']}/v1/AUTH_{unknown}",
            headers={"X-Auth-Token": token},
            params={"format": "json"},
        )
    assert listing.status_code in (200, 204, 404)
    assert listing.status_code == 404 or listing.json() == []

    unscoped = await _objects(swift, UNSCOPED, settings.archive_container)
    assert [e["id"] for e in unscoped] == ["of-unknown"]
    domains = await _objects(swift, UNSCOPED, settings.domain_archive_container)
    assert [e["id"] for e in domains] == ["of-domain"]
    assert [e["id"] for e in await _objects(swift, known, settings.archive_container)] == [
        "of-known"
    ]
