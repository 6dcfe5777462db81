"""Retention: indices past retention go and the boundary index is trimmed (osmem); a
shortened retention reaches existing objects' X-Delete-At (real Swift, Swift's s3api and
the file store)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from stacktrail.archive.layout import build_body, delete_at, object_headers, object_key
from stacktrail.archive.retention import ArchiveRetention
from stacktrail.archive.stores.base import Bucket, ObjectStore
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.archive.stores.s3 import S3Store
from stacktrail.archive.stores.swift import SwiftStore
from stacktrail.cli import jobs as jobs_cli
from stacktrail.db.retention_updates import retention_update_status
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.document import default_spec
from stacktrail.domain.trail import ArchiveFormat, WriteMode
from stacktrail.search.retention import cutoff_for
from tests.archive.stores.test_localdir import store_keeping_expiry
from tests.archive.test_export import command_app
from tests.support.corpus import bulk_load, install_template, make_event, remove_indices
from tests.support.jobs import jobs_settings
from tests.support.segments import segment_spec
from tests.support.stores import ProjectAdmin

ACTOR = Actor(user_id="u1", user_name="tester", project_id=None)
NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


async def set_retention(store: TrailStore, project: str, days: int, **archive: Any) -> None:
    base = default_spec(await store.get_defaults(), store.settings)
    spec = base.model_copy(
        update={"retention_days": days, "archive": base.archive.model_copy(update=archive)}
    )
    await store.put_trail(project, spec, ACTOR)


async def indices(search_url: str, pattern: str) -> dict[str, int]:
    async with httpx.AsyncClient(base_url=search_url, timeout=30) as http:
        rows = (await http.get(f"/_cat/indices/{pattern}", params={"format": "json"})).json()
    return {row["index"]: int(row["docs.count"]) for row in rows}


async def test_search_retention_deletes_and_trims(
    store: TrailStore, search_url: str, index_template: str, tmp_path: Path
) -> None:
    short, default = uuid.uuid4().hex, uuid.uuid4().hex
    await set_retention(store, short, 30)  # cut-off 2025-05-16; `default` keeps 90 days
    assert cutoff_for(NOW, 30) == datetime(2025, 5, 16, tzinfo=UTC)
    at = datetime.fromisoformat
    times = {
        short: [
            "2025-03-10T00:00:00+00:00",
            "2025-04-30T23:59:59.999+00:00",
            "2025-05-10T08:00:00+00:00",
            "2025-05-15T23:59:59.999+00:00",
            "2025-05-16T00:00:00+00:00",
            "2025-05-20T00:00:00+00:00",
            "2025-06-14T00:00:00+00:00",
        ],
        default: [
            "2025-02-20T00:00:00+00:00",
            "2025-03-16T23:00:00+00:00",
            "2025-03-17T00:00:00+00:00",
            "2025-05-01T00:00:00+00:00",
        ],
    }
    docs = [(project, make_event(project, at(t)), NOW) for project, ts in times.items() for t in ts]
    await install_template(search_url, index_template)
    await bulk_load(search_url, index_template, docs)
    prefix = index_template.split("{", 1)[0]
    stray = f"{prefix}{short}-notes"  # not an index of the template: never touched
    async with httpx.AsyncClient(base_url=search_url, timeout=30) as http:
        (await http.put(f"/{stray}")).raise_for_status()
    before = await indices(search_url, f"{prefix}*")
    db_url = store.engine.url.render_as_string(hide_password=False)
    settings = jobs_settings(search_url, index_template, tmp_path, database_url=db_url)
    try:
        lines, deleted = await jobs_cli.retention(settings, dry_run=True, projects=None, now=NOW)
        assert deleted == 0
        text = "\n".join(lines)
        assert f"would delete index {prefix}{short}-2025.03" in text
        assert f"would delete index {prefix}{short}-2025.04" in text
        assert f"would trim index {prefix}{short}-2025.05" in text
        assert f"{short}-2025.05 (project {short}, retention 30 d, cut-off 2025-05-16" in text
        assert f"would delete index {prefix}{default}-2025.02" in text
        assert f"would trim index {prefix}{default}-2025.03" in text
        # the file store has no expirer of its own: its objects are swept as well
        assert lines[5:] == [
            "file archive: would delete 0 objects past their expiry (projects checked: 1)"
        ]
        assert len(lines) == 6
        assert await indices(search_url, f"{prefix}*") == before  # a dry run changes nothing

        lines, deleted = await jobs_cli.retention(settings, dry_run=False, projects=None, now=NOW)
        assert deleted == 2 + 2 + 1 + 1
        after = await indices(search_url, f"{prefix}*")
        assert after == {
            f"{prefix}{short}-2025.05": 2,
            f"{prefix}{short}-2025.06": 1,
            f"{prefix}{default}-2025.03": 1,
            f"{prefix}{default}-2025.05": 1,
            stray: 0,
        }
        again, _ = await jobs_cli.retention(settings, dry_run=True, projects=None, now=NOW)
        assert again[0] == "nothing is past retention"
    finally:
        await remove_indices(search_url, index_template)


def test_retention_command_dry_run(
    store: TrailStore, search_url: str, index_template: str, tmp_path: Path, monkeypatch: Any
) -> None:
    for name in list(os.environ):
        if name.startswith("STACKTRAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STACKTRAIL_SEARCH_URL", search_url)
    monkeypatch.setenv("STACKTRAIL_SEARCH_INDEX_TEMPLATE", index_template)
    monkeypatch.setenv(
        "STACKTRAIL_DATABASE_URL", store.engine.url.render_as_string(hide_password=False)
    )
    result = CliRunner().invoke(command_app(), ["retention", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "nothing is past retention" in result.output
    monkeypatch.setenv("STACKTRAIL_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    refused = CliRunner().invoke(command_app(), ["retention", "--dry-run"])
    assert refused.exit_code == 2
    assert "not migrated" in refused.output


class PhantomKeys(LocalDirStore):
    """The file store, listing one object more than it holds (deleted meanwhile)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.phantom: str | None = None

    async def list_keys(self, bucket: Bucket, prefix: str = "") -> list[str]:
        keys = await super().list_keys(bucket, prefix)
        return keys if self.phantom is None else sorted([*keys, self.phantom])


@pytest.fixture(params=["swift", "s3", "file"])
async def objects(
    request: pytest.FixtureRequest,
    swift_store: SwiftStore,
    s3_store: S3Store,
    tmp_path: Path,
) -> AsyncIterator[ObjectStore]:
    """Each store the sweep changes objects in (the file store only where xattrs work)."""
    if request.param == "swift":
        yield swift_store
    elif request.param == "s3":
        yield s3_store
    else:
        store = store_keeping_expiry(tmp_path, PhantomKeys)
        yield store
        await store.aclose()


async def test_shorter_retention_updates_existing_objects(
    own_store: TrailStore, objects: ObjectStore, admin_a: ProjectAdmin
) -> None:
    store = own_store
    project = admin_a.project_id
    container = f"{project}-st-retention-{uuid.uuid4().hex[:8]}"  # S3: its own bucket
    archive = {"container": container, "prefix": "logs", "regions": ["RegionOne"]}
    await set_retention(store, project, 90, **archive)
    retention = ArchiveRetention(store, objects)
    assert await retention.detect_changes() == []  # the first run notes where history stands

    today = datetime.now(UTC).date()
    days = {
        "old": (today - timedelta(days=40)).isoformat(),
        "mid": (today - timedelta(days=10)).isoformat(),
        "new": (today - timedelta(days=1)).isoformat(),
    }
    bucket = Bucket(project, "RegionOne", container, WriteMode.RESELLER)
    await objects.ensure_container(bucket)
    keys = {}
    for name, day in days.items():
        spec = segment_spec(
            project,
            day,
            container=container,
            prefix="logs",
            format=ArchiveFormat.NDJSON,
            retention_days=90,
            interval=60.0,
        )
        event = make_event(project, datetime.fromisoformat(day).replace(tzinfo=UTC))
        body = build_body(spec, [orjson.dumps(event)])
        key = object_key(spec, "RegionOne", "20250101T0000Z", "w1", f"seg{name}")
        headers = object_headers(body, delete_at(day, 90))
        await objects.put(bucket, key, body.data, headers)
        keys[name] = key
    if isinstance(objects, PhantomKeys):  # listed, but gone before the sweep reaches it
        objects.phantom = keys["new"].replace("segnew", "seggone")

    await set_retention(store, project, 30, **archive)
    assert await retention.detect_changes() == [project]
    queued = await retention_update_status(store.engine, project)
    assert queued is not None
    assert queued.status == "pending"
    assert queued.retention_days == 30
    assert await retention.run_pending() == 1

    status = await retention_update_status(store.engine, project)
    assert status is not None
    assert status.status == "done"
    seen = 3
    if isinstance(objects, PhantomKeys):
        seen, objects.phantom = 4, None  # the phantom was seen, and left alone
    assert (status.objects_seen, status.objects_updated, status.objects_deleted) == (seen, 2, 1)
    remaining = await objects.list_keys(bucket)
    assert remaining == sorted([keys["mid"], keys["new"]])
    if isinstance(objects, SwiftStore):
        assert admin_a.listing(container) == remaining  # in the project's own account
    for name in ("mid", "new"):
        stored = await objects.get(bucket, keys[name])
        assert stored.headers["x-delete-at"] == str(delete_at(days[name], 30))
        assert stored.headers["x-object-meta-record-count"] == "1"  # metadata kept
        assert len(stored.headers["x-object-meta-sha256"]) == 64
        assert stored.headers["x-object-meta-first-event-time"].startswith(days[name])
        assert stored.headers["content-type"] == "application/gzip"

    # nothing changed since: a second round does not touch anything
    assert await retention.detect_changes() == []
    assert await retention.run_pending() == 0
