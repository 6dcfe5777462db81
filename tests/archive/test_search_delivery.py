"""Search-sourced delivery: windows of ingestion time, exported once each, caught up after
downtime (real search server, real config store on SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stacktrail.archive.search_delivery import delivery_state, window_end
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.audit import Actor
from stacktrail.domain.document import TrailSpec, default_spec
from stacktrail.domain.trail import ArchiveFormat, ArchiveSource, WriteMode
from stacktrail.scheduler import Scheduler, SchedulerConfig
from stacktrail.search.client import SearchClient
from tests.archive.test_export import read_tree
from tests.support.corpus import bulk_load, install_template, make_event, remove_indices
from tests.support.jobs import jobs_settings

ACTOR = Actor(user_id="u1", user_name="tester", project_id=None)
INTERVAL = timedelta(minutes=1)
SETTLE = timedelta(seconds=30)


async def configure(
    store: TrailStore,
    project: str,
    *,
    source: ArchiveSource,
    container: str = "audit",
    write_mode: WriteMode = WriteMode.RESELLER,
    fmt: ArchiveFormat = ArchiveFormat.NDJSON,
) -> TrailSpec:
    base = default_spec(await store.get_defaults(), store.settings)
    archive = base.archive.model_copy(
        update={
            "source": source,
            "interval": "1m",
            "regions": ["RegionOne"],
            "container": container,
            "write_mode": write_mode,
            "format": fmt,
        }
    )
    spec = base.model_copy(update={"archive": archive})
    await store.put_trail(project, spec, ACTOR)
    return spec


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def window_of(key: str) -> str:
    """The window part of an object name (`<export id>-<part>`)."""
    return key.rsplit("_", 1)[1].split("-")[0]


async def test_windows_delivered_once_each_and_caught_up_after_downtime(
    store: TrailStore, search_url: str, index_template: str, tmp_path: Path
) -> None:
    project, ingest_only, broken = (uuid.uuid4().hex for _ in range(3))
    await configure(store, project, source=ArchiveSource.SEARCH)
    await configure(store, ingest_only, source=ArchiveSource.INGEST)
    await configure(
        store, broken, source=ArchiveSource.SEARCH, container="absent", write_mode=WriteMode.ACL
    )
    switched = (await store.get_trail(project)).updated_at
    assert switched is not None

    # events ingested over seven minutes after the switch, with event times over two days
    # (late events among them), plus some of the other projects
    docs: list[tuple[str, dict[str, Any], datetime]] = []
    expected: dict[str, datetime] = {}
    for i in range(840):
        ingested = switched + timedelta(milliseconds=500 * i + 1)
        when = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(minutes=(i * 37) % 2880)
        event = make_event(project, when)
        docs.append((project, event, ingested))
        expected[event["id"]] = ingested
        for other in (ingest_only, broken):
            if i % 20 == 0:
                docs.append((other, make_event(other, when), ingested))
    await install_template(search_url, index_template)
    await bulk_load(search_url, index_template, docs)

    settings = jobs_settings(search_url, index_template, tmp_path)
    client = SearchClient(search_url)
    objects = LocalDirStore(tmp_path / "archive")
    clock = Clock(switched + timedelta(minutes=2) + SETTLE)
    scheduler = Scheduler(
        settings,
        store,
        client,
        objects,
        config=SchedulerConfig(settle=SETTLE, page_size=250),
        ledger=SqlLedger(store.engine),
        clock=clock,
    )
    try:
        first = await scheduler.run_search_delivery()
        state = await delivery_state(store.engine, project)
        assert state is not None
        assert state.ingested_until == window_end(switched + timedelta(minutes=1), INTERVAL)
        assert first == 2  # the broken trail fails at its first window with events (below)

        clock.now += 3 * INTERVAL  # the scheduler was stopped for three intervals
        assert await scheduler.run_search_delivery() == 3
        later = await delivery_state(store.engine, project)
        assert later is not None
        assert later.ingested_until == state.ingested_until + 3 * INTERVAL

        clock.now = switched + timedelta(minutes=10)
        await scheduler.run_search_delivery()
        done = await delivery_state(store.engine, project)
        assert done is not None
        assert done.ingested_until > switched + timedelta(minutes=7)
        assert done.events == len(expected)
        assert done.last_error is None

        tree = read_tree(tmp_path / "archive" / "audit")
        mine = {k: v for k, v in tree.items() if k.startswith(project)}
        ids = [record["id"] for records in mine.values() for record in records]
        assert len(ids) == len(set(ids)), "an event was delivered twice"
        assert set(ids) == set(expected), "an event was not delivered"
        assert not any(k.startswith(ingest_only) for k in tree)
        # each window's objects hold exactly the events ingested in that window
        windows: dict[str, list[datetime]] = {}
        for key, records in mine.items():
            assert "_search_" in key
            windows.setdefault(window_of(key), []).extend(expected[r["id"]] for r in records)
        assert 0 < len(windows) <= done.windows
        spans = sorted((min(times), max(times)) for times in windows.values())
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end < start
        # objects are filed by event day, not ingestion time
        days = Counter(key.split("/")[-4:-1][2] for key in mine)
        assert set(days) == {"01", "02"}

        broken_state = await delivery_state(store.engine, broken)
        assert broken_state is not None
        assert broken_state.last_error is not None
        assert "does not grant write" in broken_state.last_error
        status = {s.region: s for s in await SqlLedger(store.engine).status(project)}
        assert status["RegionOne"].last_key is not None
    finally:
        await client.close()
        await remove_indices(search_url, index_template)


async def test_window_interrupted_halfway_resumes_in_place(
    store: TrailStore, search_url: str, index_template: str, tmp_path: Path
) -> None:
    project = uuid.uuid4().hex
    await configure(store, project, source=ArchiveSource.SEARCH, fmt=ArchiveFormat.JSON)
    switched = (await store.get_trail(project)).updated_at
    assert switched is not None
    start = window_end(switched, INTERVAL)  # one whole window, many events, four days
    docs = []
    for i in range(1200):
        when = datetime(2025, 5, 1, tzinfo=UTC) + timedelta(hours=(i * 7) % 96)
        docs.append((project, make_event(project, when), start + timedelta(milliseconds=40 * i)))
    await install_template(search_url, index_template)
    await bulk_load(search_url, index_template, docs)
    settings = jobs_settings(search_url, index_template, tmp_path)
    client = SearchClient(search_url)
    objects = LocalDirStore(tmp_path / "archive")

    class Boom(Exception):
        pass

    saves = 0
    original_put = objects.put

    async def failing_put(*args: Any, **kwargs: Any) -> str:
        nonlocal saves
        saves += 1
        if saves == 3:
            raise Boom
        return await original_put(*args, **kwargs)

    objects.put = failing_put  # type: ignore[method-assign]
    clock = Clock(start + INTERVAL + SETTLE)
    scheduler = Scheduler(
        settings,
        store,
        client,
        objects,
        config=SchedulerConfig(settle=SETTLE),
        clock=clock,
    )
    try:
        await scheduler.run_search_delivery()  # fails at the window's third object
        state = await delivery_state(store.engine, project)
        assert state is not None
        assert state.window is not None
        assert len(state.window.files) == 2
        assert state.last_error is not None
        assert "Boom" in state.last_error
        objects.put = original_put  # type: ignore[method-assign]
        await scheduler.run_search_delivery()
        tree = read_tree(tmp_path / "archive" / "audit")
        ids = [r["id"] for records in tree.values() for r in records]
        assert len(ids) == len(set(ids)) == 1200
        final = await delivery_state(store.engine, project)
        assert final is not None
        assert final.window is None
        assert final.events == 1200
    finally:
        await client.close()
        await remove_indices(search_url, index_template)
