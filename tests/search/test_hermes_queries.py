"""Hermes' own query shapes, both generations, against what the search sink indexed.

Real search server (osmem-server). It has no data streams: the shared layout is tested
with a plain index of the shared name (`search_data_stream=false`) through the same
write and query path; the data stream template body has its unit test in
test_documents.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio

from stacktrail.config import SearchLayoutKind, Settings
from stacktrail.domain.delivery import Outcome
from stacktrail.domain.event import AuditEvent
from stacktrail.ingest.decode import decode_message
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import SearchLayout
from stacktrail.search.sink import SearchSink
from tests.support.cadf_factory import make_cadf, wrap_v2
from tests.support.hermes_queries import (
    CURRENT,
    LEGACY,
    MAX_PAGE,
    Generation,
    buckets,
    hits,
    struct_problems,
)
from tests.support.sinks import Acks, make_trail

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def decoded(**cadf: Any) -> AuditEvent:
    return decode_message(
        orjson.dumps(wrap_v2({"event_type": "audit.http.response", "payload": make_cadf(**cadf)}))
    )


@dataclass
class Indexed:
    generation: Generation
    a: str
    b: str
    events: dict[str, AuditEvent]
    search_url: str

    async def run(self, query: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        index, body = query
        async with httpx.AsyncClient(base_url=self.search_url, timeout=60) as http:
            response = await http.post(f"/{index}/_search", json=body)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data


async def _index(
    settings: Settings, records: list[tuple[str, AuditEvent, tuple[str, ...]]]
) -> None:
    sink = SearchSink(SearchClient.from_settings(settings), settings)
    await sink.start()
    acks = Acks()
    for project, event, tenants in records:
        record = acks.record(make_trail(project, "c"), event)
        record.tenants = tenants
        await sink.put(record)
    await sink.stop(30)
    await acks.wait(len({event.id for _, event, _ in records}))
    assert set(acks.outcomes.values()) == {Outcome.DELIVERED}, acks.reasons


@pytest_asyncio.fixture(params=[LEGACY, CURRENT])
async def indexed(
    request: pytest.FixtureRequest, search_url: str, index_template: str
) -> AsyncIterator[Indexed]:
    shared = request.param == CURRENT
    shared_index = f"{index_template.split('-', 1)[0]}-hermes"
    settings = Settings(
        search_url=search_url,
        search_index_template=index_template,
        search_layout=SearchLayoutKind.SHARED if shared else SearchLayoutKind.PER_PROJECT,
        search_shared_index=shared_index,
        search_data_stream=False,  # osmem has no data streams (see the module docstring)
        search_flush_interval=timedelta(milliseconds=50),
    )
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    events = {
        "create": decoded(
            event_time=NOW - timedelta(minutes=30),
            initiator_project=a,
            action="create/server",
            target_type="compute/server",
            request_path="/v2.1/servers",
            outcome="success",
        ),
        "denied": decoded(
            event_time=NOW - timedelta(minutes=20),
            initiator_project=a,
            action="update/server",
            outcome="failure",
            reason={"reasonCode": 401, "reasonType": "HTTP"},
            target_type="compute/server",
        ),
        "role": decoded(  # a's admin grants a role in b: both see it
            event_time=NOW - timedelta(minutes=10),
            initiator_project=a,
            target_project=b,
            action="create/role_assignment",
            target_type="data/security/account/user",
        ),
        "b-only": decoded(
            event_time=NOW,
            initiator_project=b,
            action="delete/server",
            target_type="compute/server",
        ),
    }
    # fidelity: one array where Hermes wants a string
    events["denied"].body["target"]["project_id"] = [a, b]
    records = [
        (a, events["create"], (a,)),
        (a, events["denied"], (a,)),
        (a, events["role"], (a, b)),
        (b, events["role"], (a, b)),
        (b, events["b-only"], (b,)),
    ]
    await _index(settings, records)
    layout = SearchLayout.from_settings(settings)
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        await http.post(f"/{layout.pattern}/_refresh")
    prefix = index_template.split("{project_id}")[0]
    generation = Generation(request.param, prefix=prefix, shared_index=shared_index)
    try:
        yield Indexed(generation, a, b, events, search_url)
    finally:
        async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
            await http.delete(f"/{layout.pattern}")
            await http.delete(f"/_index_template/{layout.template_name}")


Shape = Callable[[Indexed], tuple[tuple[str, dict[str, Any]], set[str]]]


def _filter(name: str, value: Callable[[Indexed], str], expect: set[str]) -> Shape:
    def shape(ix: Indexed) -> tuple[tuple[str, dict[str, Any]], set[str]]:
        return ix.generation.list_events(ix.a, filters={name: value(ix)}), expect

    return shape


def _ev(ix: Indexed, key: str) -> dict[str, Any]:
    return ix.events[key].body


A_ALL = {"create", "denied", "role"}
SHAPES: dict[str, Shape] = {
    "list": lambda ix: (ix.generation.list_events(ix.a), A_ALL),
    "action": _filter("action", lambda ix: "create/server", {"create"}),
    "action negated": _filter("action", lambda ix: "!create/server", {"denied", "role"}),
    "outcome": _filter("outcome", lambda ix: "failure", {"denied"}),
    "request_path": _filter("request_path", lambda ix: "/v2.1/servers", {"create"}),
    "observer_id": _filter("observer_id", lambda ix: "target", A_ALL),
    "observer_type": _filter("observer_type", lambda ix: "!service/compute", A_ALL),
    "target_id": _filter("target_id", lambda ix: _ev(ix, "denied")["target"]["id"], {"denied"}),
    "target_type": _filter("target_type", lambda ix: "data/security/account/user", {"role"}),
    "initiator_id": _filter("initiator_id", lambda ix: _ev(ix, "create")["initiator"]["id"], A_ALL),
    "initiator_type": _filter("initiator_type", lambda ix: "service/security/account/user", A_ALL),
    "initiator_name": _filter("initiator_name", lambda ix: "ops-automation", A_ALL),
    "time range": lambda ix: (
        ix.generation.list_events(
            ix.a,
            time={
                "gte": (NOW - timedelta(minutes=25)).isoformat(),
                "lt": (NOW - timedelta(minutes=5)).isoformat(),
            },
        ),
        {"denied", "role"},
    ),
    "search": lambda ix: (ix.generation.list_events(ix.a, search="role_assignment"), {"role"}),
    "page of 20000": lambda ix: (ix.generation.list_events(ix.a, size=MAX_PAGE), A_ALL),
    "event by id": lambda ix: (ix.generation.get_event(ix.a, ix.events["create"].id), {"create"}),
}


def _names(ix: Indexed, found: list[dict[str, Any]]) -> set[str]:
    by_id = {event.id: key for key, event in ix.events.items()}
    return {by_id.get(doc["id"], doc["id"]) for doc in found}


@pytest.mark.parametrize("shape", list(SHAPES))
async def test_hermes_query_shape_finds_what_was_indexed(indexed: Indexed, shape: str) -> None:
    query, expected = SHAPES[shape](indexed)
    found = hits(await indexed.run(query))
    assert _names(indexed, found) == expected
    for doc in found:
        assert struct_problems(doc) == []


async def test_hermes_sorts_newest_first_and_keeps_tenants_apart(indexed: Indexed) -> None:
    found = hits(await indexed.run(indexed.generation.list_events(indexed.b)))
    assert [doc["id"] for doc in found] == [
        indexed.events["b-only"].id,
        indexed.events["role"].id,
    ]


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ("action", ["create/role_assignment", "create/server", "update/server"]),
        ("outcome", ["failure", "success"]),
        ("target_type", ["compute/server", "data/security/account/user"]),
    ],
)
async def test_hermes_attributes_aggregate_on_keyword(
    indexed: Indexed, attribute: str, expected: list[str]
) -> None:
    response = await indexed.run(indexed.generation.attributes(indexed.a, attribute))
    assert sorted(buckets(response)) == expected


async def test_hermes_decodes_numeric_codes_and_arrays_as_strings(indexed: Indexed) -> None:
    (doc,) = hits(
        await indexed.run(indexed.generation.get_event(indexed.a, indexed.events["denied"].id))
    )
    assert doc["reason"]["reasonCode"] == "401"
    assert doc["target"]["project_id"] == indexed.a  # the first of the list
    assert struct_problems(doc) == []
