"""The shared layout: one index for every project, tenants in `tenant_ids`; export reads
and retention work by tenant and time.

osmem-server has no data streams: these tests use a plain index of the shared name
(`search_data_stream=false`) through the same write and query path; the data stream
template body has its unit test in test_documents.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest_asyncio

from stacktrail.config import SearchLayoutKind, Settings
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.timeframe import Timeframe
from stacktrail.domain.trail import ArchiveConfig, ArchiveFormat, Trail
from stacktrail.ingest.decode import decode_message
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import SearchLayout
from stacktrail.search.reader import (
    EventReader,
    event_time_query,
    index_target,
    project_indices,
)
from stacktrail.search.retention import apply_search_retention, plan_search_retention
from stacktrail.search.sink import SearchSink
from tests.support.cadf_factory import make_cadf, wrap_v1
from tests.support.sinks import Acks

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=2)


def _trail(project: str, *, search: bool = True) -> Trail:
    archive = ArchiveConfig(False, "c", "", ArchiveFormat.JSON, timedelta(hours=1), ("r",))
    return Trail(project, True, 30, archive, search_enabled=search)


def _event(when: datetime, initiator: str, target: str | None = None) -> AuditEvent:
    cadf = make_cadf(
        event_id=str(uuid.uuid4()),
        event_time=when,
        initiator_project=initiator,
        target_project=target,
    )
    return decode_message(orjson.dumps(wrap_v1(cadf)))


class Shared:
    def __init__(self, settings: Settings, a: str, b: str, events: dict[str, AuditEvent]):
        self.settings = settings
        self.layout = SearchLayout.from_settings(settings)
        self.a, self.b, self.events = a, b, events


@pytest_asyncio.fixture
async def shared(search_url: str, index_template: str) -> AsyncIterator[Shared]:
    settings = Settings(
        search_url=search_url,
        search_index_template=index_template,
        search_layout=SearchLayoutKind.SHARED,
        search_shared_index=f"{index_template.split('-', 1)[0]}-hermes",
        search_data_stream=False,  # osmem has no data streams (see the module docstring)
        search_flush_interval=timedelta(milliseconds=20),
    )
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    events = {
        "a-old": _event(OLD, a),
        "a-recent": _event(RECENT, a),
        "a-to-b-old": _event(OLD, a, b),
        "b-old": _event(OLD, b),
    }
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    await sink.start()
    acks = Acks()
    routed = {
        "a-old": [_trail(a)],
        "a-recent": [_trail(a)],
        "a-to-b-old": [_trail(a), _trail(b)],
        "b-old": [_trail(b)],
    }
    for key, trails in routed.items():
        tenants = tuple(t.project_id for t in trails if t.search_enabled)
        for trail in trails:
            record = acks.record(trail, events[key])
            record.tenants = tenants
            await sink.put(record)
    await sink.stop(30)
    await acks.wait(len(events))
    layout = SearchLayout.from_settings(settings)
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        await http.post(f"/{layout.shared_index}/_refresh")
    try:
        yield Shared(settings, a, b, events)
    finally:
        async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
            await http.delete(f"/{layout.shared_index}")
            await http.delete(f"/_index_template/{layout.template_name}")


async def _read(shared: Shared, project: str, frame: Timeframe) -> set[str]:
    client = SearchClient(shared.settings.search_url)
    try:
        indices = await project_indices(client, shared.layout, project, frame)
        target = index_target(shared.layout, project, indices)
        found: set[str] = set()
        async for page in EventReader(client).pages(target, event_time_query(project, frame)):
            found.update(hit.event["id"] for hit in page)
        return {key for key, event in shared.events.items() if event.id in found}
    finally:
        await client.close()


async def test_one_document_per_event_with_every_tenant(shared: Shared) -> None:
    async with httpx.AsyncClient(base_url=shared.settings.search_url, timeout=60) as http:
        response = await http.post(
            f"/{shared.layout.shared_index}/_search", json={"size": 100, "query": {"match_all": {}}}
        )
    docs = {hit["_source"]["id"]: hit["_source"] for hit in response.json()["hits"]["hits"]}
    assert len(docs) == len(shared.events)
    both = docs[shared.events["a-to-b-old"].id]
    assert both["tenant_ids"] == [shared.a, shared.b]
    assert both["@timestamp"] == OLD.isoformat()


async def test_export_reads_a_tenants_events_by_time(shared: Shared) -> None:
    everything = Timeframe(NOW - timedelta(days=60), NOW)
    assert await _read(shared, shared.b, everything) == {"a-to-b-old", "b-old"}
    assert await _read(shared, shared.a, everything) == {"a-old", "a-recent", "a-to-b-old"}
    recent = Timeframe(NOW - timedelta(days=5), NOW)
    assert await _read(shared, shared.a, recent) == {"a-recent"}


async def test_retention_by_tenant_and_time(shared: Shared) -> None:
    days = {shared.a: 30, shared.b: 90}

    async def retention_of(project: str) -> int:
        return days.get(project, 3650)

    client = SearchClient(shared.settings.search_url)
    try:
        plan = await plan_search_retention(client, shared.layout, retention_of, NOW)
        assert [(p.index.project_id, p.docs) for p in plan] == [(shared.a, 2)]
        assert await apply_search_retention(client, plan) == 2
    finally:
        await client.close()
    everything = Timeframe(NOW - timedelta(days=60), NOW)
    # a's retention governs the documents a owns; b's own old event stays
    assert await _read(shared, shared.a, everything) == {"a-recent"}
    assert await _read(shared, shared.b, everything) == {"b-old"}
