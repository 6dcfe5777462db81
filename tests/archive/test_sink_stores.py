"""One archive run, end to end, against each store: Swift, S3 (s3api) and a local directory.

Events of two projects on both sides of a UTC midnight become four objects, one per
(project, day), under the documented key layout; every object holds exactly the
normalised events of its project and day and carries the retention's X-Delete-At.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from stacktrail.archive.layout import delete_at
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.ledger import MemoryLedger
from stacktrail.domain.trail import ArchiveFormat
from stacktrail.keystone import KeystoneClient
from tests.support.sinks import (
    BEFORE_MIDNIGHT,
    DAYS,
    REGION,
    Acks,
    by_id,
    make_event,
    make_trail,
    sink_settings,
    unique,
    unpack,
)
from tests.support.stores import ProjectAdmin

KEY = re.compile(
    r"^(?P<prefix>audit/logs)/(?P<project>[0-9a-f]{32})/RegionOne/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/"
    r"(?P=project)_RegionOne_(?P<stamp>\d{8}T\d{4}Z)_test-worker_(?P<segment>\d{16})\.json\.gz$"
)


@pytest.fixture
def shared() -> str:
    """The operator's shared container: in S3 only it (or a bucket named after the
    project) may hold several projects' objects (store_names.s3_owner_problem)."""
    return unique("st-run")


@pytest.fixture(params=["swift", "s3", "file"])
async def store(
    request: pytest.FixtureRequest,
    keystone: KeystoneClient,
    service_settings: Settings,
    tmp_path: Path,
    shared: str,
) -> AsyncIterator[ObjectStore]:
    kind = request.param
    opened: ObjectStore
    if kind == "swift":
        opened = SwiftStore(keystone)
    elif kind == "s3":
        opened = S3Store.from_settings(
            service_settings.model_copy(update={"archive_container": shared})
        )
    else:
        opened = LocalDirStore(tmp_path / "archive")
    yield opened
    await opened.aclose()


async def test_two_projects_across_midnight(
    store: ObjectStore,
    tmp_path: Path,
    admin_a: ProjectAdmin,
    admin_b: ProjectAdmin,
    shared: str,
) -> None:
    settings = sink_settings(tmp_path)
    ledger = MemoryLedger()
    sink = ArchiveSink(settings, store, ledger)
    await sink.start()
    container = shared
    projects = (admin_a.project_id, admin_b.project_id)
    trails = {
        p: make_trail(p, container, prefix="/audit/logs/", retention_days=7) for p in projects
    }
    events = {
        p: [make_event(p, BEFORE_MIDNIGHT + timedelta(minutes=i), i) for i in range(12)]
        for p in projects
    }
    acks = Acks()
    for i in range(12):
        for p in projects:
            await sink.put(acks.record(trails[p], events[p][i]))
    await acks.wait(24)
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}

    summary = await sink.flush()
    assert (summary.objects, summary.records, summary.errors) == (4, 24, [])
    await sink.stop(5)

    seen_days = set()
    for project in projects:
        bucket = Bucket(project, REGION, container)
        keys = [k for k in await store.list_keys(bucket, "audit/logs/") if f"/{project}/" in k]
        assert len(keys) == 2, keys
        expected = by_id(events[project])
        archived: list[str] = []
        for key in keys:
            match = KEY.match(key)
            assert match, key
            assert match["project"] == project
            day = f"{match['y']}-{match['m']}-{match['d']}"
            seen_days.add((project, day))
            stored = await store.get(bucket, key)
            records = unpack(stored.body, ArchiveFormat.JSON)
            assert all(r == expected[r["id"]] for r in records)  # exact normalised bodies
            assert {r["eventTime"][:10] for r in records} == {day}
            archived.extend(r["id"] for r in records)
            assert stored.headers["x-object-meta-record-count"] == str(len(records))
            if store.name != "file" or stored.headers:
                assert stored.headers["x-delete-at"] == str(delete_at(day, 7))
        assert sorted(archived) == sorted(expected)
    assert seen_days == {(p, d) for p in projects for d in DAYS}
    assert len(ledger.deliveries) == 4

    if store.name == "swift":
        # each project's objects are in its own account, visible to its own admin
        for admin in (admin_a, admin_b):
            listed = admin.listing(container)
            assert len(listed) == 2
            assert all(f"/{admin.project_id}/" in k for k in listed)
