"""Expiry of archived objects where the store does not expire them itself: S3 (Swift's
real s3api) and the file store. Swift's own expirer is tested in tests/sinks."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from stacktrail.archive.expiry import ArchiveExpiry
from stacktrail.archive.layout import build_body, delete_at, object_headers, object_key
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.db.leader import LocalLeaderLock
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.errors import TransientError
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.scheduler import Scheduler, SchedulerConfig
from tests.archive.stores.test_localdir import store_keeping_expiry
from tests.archive.test_export import command_app
from tests.cli.test_retention import set_retention
from tests.support.corpus import make_event
from tests.support.segments import segment_spec
from tests.support.stores import ProjectAdmin


@pytest.fixture(params=["s3", "file"])
async def objects(
    request: pytest.FixtureRequest, s3_store: S3Store, tmp_path: Path
) -> AsyncIterator[ObjectStore]:
    if request.param == "s3":
        yield s3_store
    else:
        store = store_keeping_expiry(tmp_path, LocalDirStore)
        yield store
        await store.aclose()


async def put_object(
    objects: ObjectStore, project: str, container: str, day: date, name: str, expires: int
) -> str:
    spec = segment_spec(
        project,
        day.isoformat(),
        container=container,
        prefix="logs",
        format=ArchiveFormat.NDJSON,
        interval=60.0,
    )
    event = make_event(project, datetime.combine(day, datetime.min.time(), UTC))
    body = build_body(spec, [orjson.dumps(event)])
    key = object_key(spec, "RegionOne", "20250101T0000Z", "w1", name)
    bucket = Bucket(project, "RegionOne", container, WriteMode.RESELLER)
    await objects.put(bucket, key, body.data, object_headers(body, expires))
    return key


async def test_objects_past_retention_are_deleted(
    own_store: TrailStore, objects: ObjectStore, admin_a: ProjectAdmin
) -> None:
    assert not objects.expires_objects
    project = admin_a.project_id
    container = f"{project}-st-expiry-{uuid.uuid4().hex[:8]}"  # S3: named after its project
    await set_retention(
        own_store, project, 30, container=container, prefix="logs", regions=["RegionOne"]
    )
    bucket = Bucket(project, "RegionOne", container, WriteMode.RESELLER)
    await objects.ensure_container(bucket)
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=40), today - timedelta(days=10)
    later = int((datetime.now(UTC) + timedelta(days=5)).timestamp())
    keys = {
        "expired": await put_object(
            objects, project, container, old, "old", delete_at(old.isoformat(), 30)
        ),
        # an export wrote this one later and asked for a longer life than the day's
        "kept longer": await put_object(objects, project, container, old, "export", later),
        "recent": await put_object(
            objects, project, container, recent, "recent", delete_at(recent.isoformat(), 30)
        ),
    }

    summary = await ArchiveExpiry(own_store, objects).sweep()

    assert project in (await ArchiveExpiry(own_store, objects).projects())
    assert (summary.candidates, summary.deleted, summary.failed_projects) == (2, 1, ())
    assert await objects.list_keys(bucket) == sorted([keys["kept longer"], keys["recent"]])
    again = await ArchiveExpiry(own_store, objects).sweep()
    assert again.deleted == 0


class Unreachable(LocalDirStore):
    """The file store with one project's bucket failing, as an unreachable S3 would."""

    failing = ""

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        if bucket.project_id == self.failing:
            raise TransientError("S3 unreachable")
        return await super().list_keys(bucket, prefix)


async def test_one_failing_project_does_not_stop_the_others(
    own_store: TrailStore, admin_a: ProjectAdmin, admin_b: ProjectAdmin, tmp_path: Path
) -> None:
    objects = store_keeping_expiry(tmp_path, Unreachable)
    objects.failing = admin_a.project_id
    old = datetime.now(UTC).date() - timedelta(days=40)
    for admin in (admin_a, admin_b):
        await set_retention(
            own_store, admin.project_id, 30, container="c", prefix="logs", regions=["RegionOne"]
        )
        await put_object(objects, admin.project_id, "c", old, "old", delete_at(old.isoformat(), 30))

    summary = await ArchiveExpiry(own_store, objects).sweep()

    assert summary.failed_projects == (admin_a.project_id,)
    assert summary.deleted == 1
    b_bucket = Bucket(admin_b.project_id, "RegionOne", "c", WriteMode.RESELLER)
    assert await objects.list_keys(b_bucket, f"logs/{admin_b.project_id}/") == []


def test_only_swift_expires_objects_by_itself() -> None:
    assert SwiftStore.expires_objects
    assert not S3Store.expires_objects
    assert not LocalDirStore.expires_objects


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_leading_scheduler_sweeps_unless_turned_off(
    own_store: TrailStore, admin_a: ProjectAdmin, tmp_path: Path, enabled: bool
) -> None:
    objects = store_keeping_expiry(tmp_path, LocalDirStore)
    project = admin_a.project_id
    await set_retention(own_store, project, 30, container="c", prefix="logs", regions=["RegionOne"])
    old = datetime.now(UTC).date() - timedelta(days=40)
    key = await put_object(objects, project, "c", old, "old", delete_at(old.isoformat(), 30))
    bucket = Bucket(project, "RegionOne", "c", WriteMode.RESELLER)
    config = SchedulerConfig(
        tick=0.2, lock_check=0.2, search_retention=False, archive_expiry=enabled
    )
    scheduler = Scheduler(own_store.settings, own_store, None, objects, config=config)
    lock = LocalLeaderLock(f"expiry-{uuid.uuid4().hex}")
    assert await lock.try_acquire()
    stop = asyncio.Event()
    leading = asyncio.create_task(scheduler.lead(lock, stop))
    try:
        for _ in range(100 if enabled else 10):  # turned off: still there after a second
            if not await objects.list_keys(bucket):
                break
            await asyncio.sleep(0.1)
        assert await objects.list_keys(bucket) == ([] if enabled else [key])
    finally:
        stop.set()
        await leading
        await lock.release()


@pytest.fixture
async def expired_file_archive(
    own_store: TrailStore, admin_a: ProjectAdmin, tmp_path: Path
) -> tuple[LocalDirStore, Bucket]:
    """The file store under tmp_path/archive with one object past project A's retention."""
    (tmp_path / "archive").mkdir()
    objects = store_keeping_expiry(tmp_path / "archive", LocalDirStore)
    project = admin_a.project_id
    await set_retention(own_store, project, 30, container="c", prefix="logs", regions=["RegionOne"])
    old = datetime.now(UTC).date() - timedelta(days=40)
    await put_object(objects, project, "c", old, "old", delete_at(old.isoformat(), 30))
    return objects, Bucket(project, "RegionOne", "c", WriteMode.RESELLER)


def test_retention_command_sweeps_the_archive_without_search(
    own_store: TrailStore,
    expired_file_archive: tuple[LocalDirStore, Bucket],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects, bucket = expired_file_archive
    for name in list(os.environ):
        if name.startswith("STACKTRAIL_"):
            monkeypatch.delenv(name)
    url = own_store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("STACKTRAIL_DATABASE_URL", url)
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_STORE", "file")
    monkeypatch.setenv("STACKTRAIL_ARCHIVE_DIR", str(objects.root))
    listing = asyncio.run(objects.list_keys(bucket))
    assert len(listing) == 1

    dry = CliRunner().invoke(command_app(), ["retention", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "file archive: would delete 1 objects past their expiry" in dry.output
    assert asyncio.run(objects.list_keys(bucket)) == listing

    done = CliRunner().invoke(command_app(), ["retention", "-p", bucket.project_id])
    assert done.exit_code == 0, done.output
    assert "file archive: deleted 1 objects past their expiry (projects checked: 1)" in done.output
    assert asyncio.run(objects.list_keys(bucket)) == []

    monkeypatch.setenv("STACKTRAIL_ARCHIVE_STORE", "swift")
    nothing = CliRunner().invoke(command_app(), ["retention"])
    assert nothing.exit_code == 2
    assert "nothing to enforce" in nothing.output
