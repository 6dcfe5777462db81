"""GET /v1/projects/{id}/trail/delivery and POST .../delivery/retry, on a real archive sink
(the file store) and config store: the store's real answer in words, the command that
fixes it, the next retry; retry now delivers, and the status clears."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stacktrail.api import create_app
from stacktrail.app import SinkDeliveries
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.trail import Trail
from tests.support.api import client_for
from tests.support.config_store import make_settings
from tests.support.sinks import BEFORE_MIDNIGHT, Acks, make_event, sink_settings

WRITER = "5e1f00005e1f00005e1f00005e1f0000:9c2b00009c2b00009c2b00009c2b0000"


class StoredTrails:
    """The trails as the config store holds them now (what the pipeline's directory does)."""

    def __init__(self, store: TrailStore) -> None:
        self.store = store
        self.current: dict[str, Trail] = {}

    async def refresh(self, project_id: str) -> Trail:
        stored = await self.store.get_trail(project_id)
        trail = stored.effective.to_trail(project_id, stored.version)
        self.current[project_id] = trail
        return trail

    def get(self, project_id: str) -> Trail:
        return self.current[project_id]


@pytest.fixture
async def setup(
    store: TrailStore, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, ArchiveSink, StoredTrails, Path]]:
    settings = make_settings(archive_regions=["RegionOne"])
    trails = StoredTrails(store)
    sink_conf = sink_settings(tmp_path, archive_retry_max="10m")
    sink = ArchiveSink(
        sink_conf, LocalDirStore(sink_conf.archive_dir), SqlLedger(store.engine), directory=trails
    )
    await sink.start()

    async def writer() -> str:
        return WRITER

    app = create_app(
        settings, store, None, delivery=SinkDeliveries(lambda: sink), acl_writer=writer
    )
    async with client_for(app) as http:
        yield http, sink, trails, sink_conf.archive_dir
    await sink.stop(0.5)


async def test_missing_container_then_fixed_then_healthy(
    setup: tuple[httpx.AsyncClient, ArchiveSink, StoredTrails, Path],
) -> None:
    http, sink, trails, root = setup
    project = uuid.uuid4().hex
    path = f"/v1/projects/{project}/trail"
    answer = await http.patch(
        path,
        json={"archive": {"container": "customer", "write_mode": "acl", "regions": ["RegionOne"]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    trail = await trails.refresh(project)
    acks = Acks()
    await sink.put(acks.record(trail, make_event(project, BEFORE_MIDNIGHT)))
    await acks.wait(1)
    await sink.flush()  # the directory `customer` does not exist: 404

    view = (await http.get(path + "/delivery")).json()
    (region,) = view["regions"]
    assert region["failing"]
    problem = region["problem"]
    assert problem["kind"] == "missing_container"
    assert "does not exist" in problem["answer"]
    assert problem["commands"] == [
        "openstack container create customer",
        f"swift post -w {WRITER} customer",
    ]
    assert view["acl_writer"] == WRITER
    next_retry = datetime.fromisoformat(region["next_retry_at"])
    assert (next_retry - datetime.now(UTC)).total_seconds() > 500  # the 10-minute backoff

    (root / "customer").mkdir(parents=True)  # the project creates its container
    retried = await http.post(path + "/delivery/retry")
    assert retried.status_code == 202
    assert retried.json()["regions"] == 1
    for _ in range(200):
        view = (await http.get(path + "/delivery")).json()
        if not view["regions"][0]["failing"]:
            break
        await asyncio.sleep(0.05)
    assert not view["regions"][0]["failing"]
    assert view["regions"][0]["problem"] is None
    status = (await http.get(path + "/status")).json()
    assert status["regions"][0]["in_error"] is False


async def test_retry_without_a_delivering_process_is_503(client: httpx.AsyncClient) -> None:
    answer = await client.post(f"/v1/projects/{uuid.uuid4().hex}/trail/delivery/retry")
    assert answer.status_code == 503
    assert "does not deliver" in answer.json()["detail"]


async def test_the_held_back_backlog_is_shown(store: TrailStore, tmp_path: Path) -> None:
    """A project whose deliveries fail keeps its spooled events up to its share; the
    status says how much waits, since when, and that new events are now dead-lettered."""
    share = 8 << 10
    trails = StoredTrails(store)
    sink_conf = sink_settings(tmp_path, archive_retry_max="10m", spool_project_max_bytes=share)
    sink = ArchiveSink(
        sink_conf, LocalDirStore(sink_conf.archive_dir), SqlLedger(store.engine), directory=trails
    )
    await sink.start()
    app = create_app(
        make_settings(archive_regions=["RegionOne"]),
        store,
        None,
        delivery=SinkDeliveries(lambda: sink),
    )
    try:
        async with client_for(app) as http:
            project = uuid.uuid4().hex
            path = f"/v1/projects/{project}/trail"
            answer = await http.patch(
                path,
                json={"archive": {"container": "nowhere", "write_mode": "acl"}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert answer.status_code == 200, answer.text
            trail = await trails.refresh(project)
            acks = Acks()
            await sink.put(acks.record(trail, make_event(project, BEFORE_MIDNIGHT, 0)))
            await acks.wait(1)
            before = (await http.get(path + "/delivery")).json()["backlog"]
            assert before["bytes"] > 0
            assert before["records"] == 1
            assert before["share_bytes"] == share
            assert before["held_back"] is False
            await sink.flush()  # `nowhere` does not exist: the delivery fails

            for i in range(1, 60):  # fill the share; the overflow is refused
                await sink.put(acks.record(trail, make_event(project, BEFORE_MIDNIGHT, i)))
            await acks.wait(60)
            refused = [t for t, reason in acks.reasons.items() if "over its share" in reason]
            assert refused
            held = (await http.get(path + "/delivery")).json()["backlog"]
            assert held["held_back"] is True
            assert share - 4096 <= held["bytes"] <= share
            assert held["records"] == 60 - len(refused)
            oldest = datetime.fromisoformat(held["oldest_at"])
            assert 0 <= (datetime.now(UTC) - oldest).total_seconds() < 60
    finally:
        await sink.stop(0.5)
