"""The ledger write is part of a delivery: an object the ledger did not record is not
delivered yet, so no digest misses it. The ledger's database (real PostgreSQL) is cut
through a TCP relay while the object is stored, then comes back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from stacktrail.archive.digests import DigestWriter
from stacktrail.archive.search_delivery import delivery_state
from stacktrail.archive.sink import ArchiveSink
from stacktrail.archive.stores.localdir import LocalDirStore
from stacktrail.db import engine as db
from stacktrail.db import tables as t
from stacktrail.db.ledger import SqlLedger
from stacktrail.db.trail_store import TrailStore
from stacktrail.domain.trail import ArchiveSource
from stacktrail.scheduler import Scheduler, SchedulerConfig
from stacktrail.search.client import SearchClient
from stacktrail_reader.sources import FolderSource
from stacktrail_reader.validate import load_keys, validate
from tests.archive.test_export import read_tree
from tests.archive.test_search_delivery import SETTLE, configure
from tests.support.config_store import (
    create_postgres_database,
    drop_postgres_database,
    make_settings,
)
from tests.support.corpus import bulk_load, install_template, remove_indices
from tests.support.corpus import make_event as search_event
from tests.support.digests import REGION, configure_trail, new_key
from tests.support.jobs import jobs_settings
from tests.support.sinks import Acks, make_event, make_trail, sink_settings
from tests.support.tcpproxy import TcpProxy

MINUTE = timedelta(minutes=1)
MS = timedelta(milliseconds=1)


async def test_an_unrecorded_object_is_recorded_before_it_counts_as_delivered(
    tmp_path: Path,
) -> None:
    url = await create_postgres_database()
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    settings = sink_settings(
        tmp_path, make_settings(archive_store="file", archive_regions=[REGION])
    )
    store = TrailStore(db.create_engine(url), settings)  # the config store: not cut
    ledger_engine = db.create_engine(url.replace("127.0.0.1:5432", proxy.address))
    try:
        await db.upgrade(url)
        project, container = uuid.uuid4().hex, f"audit-{uuid.uuid4().hex[:8]}"
        await configure_trail(store, project, container)
        objects = LocalDirStore(tmp_path / "archive")
        writer = DigestWriter(store, objects, new_key(tmp_path), interval=MINUTE)
        started = datetime.now(UTC)
        assert await writer.run_due(started) == 0  # the chain starts with this minute

        sink = ArchiveSink(settings, objects, SqlLedger(ledger_engine))
        await sink.start()
        trail = make_trail(project, container, interval=timedelta(seconds=1))
        acks = Acks()
        for n in range(3):
            await sink.put(acks.record(trail, make_event(project, datetime.now(UTC), n)))
        await acks.wait(3)
        await proxy.stop()  # the ledger's database goes away
        summary = await sink.flush()
        assert summary.objects == 0
        assert summary.remaining_segments == 1  # kept: not delivered yet
        [error] = summary.errors
        assert "is stored, but the delivery ledger did not record it" in error.message
        [stored] = (tmp_path / "archive" / container).rglob("*.json.gz")
        written = stored.stat().st_mtime_ns
        again = await sink.flush()  # still away: still not delivered, not uploaded again
        assert (again.objects, again.remaining_segments) == (0, 1)

        await proxy.start()  # back
        summary = await sink.flush()
        assert (summary.objects, summary.records, summary.remaining_segments) == (1, 3, 0)
        assert stored.stat().st_mtime_ns == written  # recorded, not uploaded again
        await sink.stop(1)

        assert await writer.run_due(datetime.now(UTC) + 2 * MINUTE + MINUTE) >= 2
        folder = FolderSource(tmp_path / "archive" / container)
        report = validate(folder, project, REGION, load_keys(folder))
        assert report.valid, report.findings
        assert report.pending == []
        listed = [
            o["key"]
            for p in report.periods
            if p.digest_key
            for o in json.loads(folder.get(p.digest_key))["objects"]
        ]
        assert listed == [stored.relative_to(tmp_path / "archive" / container).as_posix()]
    finally:
        await proxy.stop()
        await ledger_engine.dispose()
        await store.close()
        await drop_postgres_database(url)


async def test_a_search_window_the_ledger_did_not_record_is_delivered_again(
    tmp_path: Path, search_url: str, index_template: str
) -> None:
    url = await create_postgres_database()
    proxy = TcpProxy("127.0.0.1", 5432)
    await proxy.start()
    settings = jobs_settings(search_url, index_template, tmp_path)
    store = TrailStore(db.create_engine(url), settings)
    ledger_engine = db.create_engine(url.replace("127.0.0.1:5432", proxy.address))
    client = SearchClient(search_url)
    try:
        await db.upgrade(url)
        project = uuid.uuid4().hex
        await configure(store, project, source=ArchiveSource.SEARCH)
        switched = (await store.get_trail(project)).updated_at
        assert switched is not None
        docs = [
            (project, search_event(project, datetime(2025, 5, 1, tzinfo=UTC)), switched + i * MS)
            for i in range(1, 41)
        ]
        await install_template(search_url, index_template)
        await bulk_load(search_url, index_template, docs)
        scheduler = Scheduler(
            settings,
            store,
            client,
            LocalDirStore(tmp_path / "archive"),
            config=SchedulerConfig(settle=SETTLE),
            ledger=SqlLedger(ledger_engine),
            clock=lambda: switched + 2 * MINUTE + SETTLE,
        )
        await proxy.stop()  # the ledger's database goes away
        await scheduler.run_search_delivery()
        state = await delivery_state(store.engine, project)
        assert state is not None
        assert state.events == 0  # the window is not delivered
        assert state.last_error is not None
        assert "is stored, but the delivery ledger did not record it" in state.last_error

        await proxy.start()
        await scheduler.run_search_delivery()
        done = await delivery_state(store.engine, project)
        assert done is not None
        assert (done.events, done.last_error) == (40, None)
        tree = read_tree(tmp_path / "archive" / "audit")
        c = t.deliveries.c
        async with store.engine.connect() as conn:
            recorded = set((await conn.scalars(select(c.key).where(c.project_id == project))).all())
        assert recorded == set(tree)  # every object is in the ledger, so in the digests
    finally:
        await client.close()
        await remove_indices(search_url, index_template)
        await proxy.stop()
        await ledger_engine.dispose()
        await store.close()
        await drop_postgres_database(url)
