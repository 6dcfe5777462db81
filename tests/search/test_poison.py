"""One odd event cannot poison an index: unmapped fields fix no mapping, and a document
search still refuses is indexed as a reduced copy (real search server)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from stacktrail.config import Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.event import AuditEvent
from stacktrail.ingest.decode import decode_message
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import ORIGINAL_FIELD, index_name
from stacktrail.search.reader import to_hit
from stacktrail.search.sink import SearchSink
from stacktrail.telemetry import metrics
from tests.support import search
from tests.support.cadf_factory import make_cadf, wrap_v1
from tests.support.sinks import BEFORE_MIDNIGHT, Acks, make_trail


def _event(project: str, **changes: Any) -> AuditEvent:
    cadf = make_cadf(
        event_id=str(uuid.uuid4()), event_time=BEFORE_MIDNIGHT, initiator_project=project
    )
    for path, value in changes.items():
        where = cadf
        *parents, leaf = path.split("__")
        for name in parents:
            where = where[name]
        where[leaf] = value
    return decode_message(orjson.dumps(wrap_v1(cadf)))


async def _sink(search_url: str, index_template: str) -> SearchSink:
    settings = Settings(
        search_url=search_url, search_index_template=index_template, search_flush_interval="50ms"
    )
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    await sink.start()
    return sink


async def test_an_odd_first_event_does_not_fix_the_mapping_for_the_month(
    search_url: str, index_template: str
) -> None:
    sink = await _sink(search_url, index_template)
    project = uuid.uuid4().hex
    trail = make_trail(project, "unused")
    acks = Acks()
    first = _event(project, tags={"x": 1}, initiator__host="10.0.0.1")
    normal = [
        _event(project, tags=["a", "b"], initiator__host={"address": "10.0.0.2", "agent": "nova"})
        for _ in range(200)
    ]
    try:
        for event in [first, *normal]:
            await sink.put(acks.record(trail, event))
        await acks.wait(201)
    finally:
        await sink.stop(5)
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}, set(acks.reasons.values())
    index = index_name(index_template, project, BEFORE_MIDNIGHT)
    assert await search.wait_for_count(search_url, index, 201) == 201
    stored = await search.get_doc(search_url, index, first.id)
    assert stored is not None
    assert stored["tags"] == {"x": 1}  # kept in the document, only not indexed


async def test_a_refused_document_is_indexed_as_a_reduced_copy_and_counted(
    search_url: str, index_template: str
) -> None:
    sink = await _sink(search_url, index_template)
    project = uuid.uuid4().hex
    trail = make_trail(project, "unused")
    acks = Acks()
    odd = _event(project, initiator__project_name="demo")
    index = index_name(index_template, project, BEFORE_MIDNIGHT)
    # An index made before stacktrail's template (Logstash's dynamic mapping once took a
    # number there): the event's string in that field is refused. The search copy of
    # every event Hermes' struct can read is already normalised, so only such an index
    # (or a cluster's own rules) refuses one.
    async with httpx.AsyncClient(base_url=search_url, timeout=30) as http:
        made = await http.put(
            f"/{index}",
            json={
                "mappings": {
                    "properties": {"initiator": {"properties": {"project_name": {"type": "long"}}}}
                }
            },
        )
        made.raise_for_status()
    before = metrics.SEARCH_REDUCED._value.get()
    try:
        await sink.put(acks.record(trail, odd))
        await acks.wait(1)
    finally:
        await sink.stop(5)
    assert acks.outcomes[odd.id] is Outcome.DELIVERED, acks.reasons
    assert metrics.SEARCH_REDUCED._value.get() == before + 1
    stored = await search.get_doc(search_url, index, odd.id)
    assert stored is not None
    assert stored["id"] == odd.id
    assert stored["initiator"]["project_id"] == project  # the queryable core
    assert "project_name" not in stored["initiator"]
    assert orjson.loads(stored[ORIGINAL_FIELD]) == odd.body
    assert to_hit({"_source": stored, "sort": [1, odd.id]}).event == odd.body  # readers
