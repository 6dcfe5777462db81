"""The search adapter's reading and deleting calls: against osmem (OpenSearch API), and
the point-in-time flavour detection against scripted answers (Elasticsearch, neither)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from stacktrail.domain.errors import PermanentError
from stacktrail.search.client import SearchClient


@pytest.fixture
async def client(search_url: str) -> AsyncIterator[SearchClient]:
    search = SearchClient(search_url)
    yield search
    await search.close()


@pytest.fixture
async def indices(search_url: str) -> AsyncIterator[list[str]]:
    prefix = f"tsearch{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-a-2025.01", f"{prefix}-a-2025.02", f"{prefix}-b-2025.01"]
    lines = []
    for n, name in enumerate(names):
        for i in range(25):
            doc = {"id": f"{n}-{i:03d}", "eventTime": f"2025-0{1 + n % 2}-{1 + i:02d}T00:00:00Z"}
            lines.append(orjson.dumps({"create": {"_index": name, "_id": doc["id"]}}))
            lines.append(orjson.dumps(doc))
    mappings = {"properties": {"id": {"type": "keyword"}, "eventTime": {"type": "date"}}}
    async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
        for name in names:
            (await http.put(f"/{name}", json={"mappings": mappings})).raise_for_status()
        response = await http.post(
            "/_bulk",
            content=b"\n".join(lines) + b"\n",
            headers={"Content-Type": "application/x-ndjson"},
        )
        response.raise_for_status()
        yield names
        await http.delete(f"/{prefix}-*")


SORT = [{"eventTime": "asc"}, {"id": "asc"}]


async def test_point_in_time_pages_with_search_after(
    client: SearchClient, indices: list[str]
) -> None:
    target = ",".join(indices[:2])
    pit = await client.open_point_in_time(target, "1m")
    assert pit is not None
    assert pit.flavour == "opensearch"
    seen: list[str] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 7, "sort": SORT, "query": {"match_all": {}}}
        if after is not None:
            body["search_after"] = after
        hits, pit = await client.search_pit(pit, body)
        if not hits:
            break
        seen.extend(hit["_id"] for hit in hits)
        after = hits[-1]["sort"]
    await client.close_point_in_time(pit)
    assert len(seen) == len(set(seen)) == 50
    with pytest.raises(PermanentError) as missing:
        await client.open_point_in_time("tsearch-none-at-all", "1m")
    assert missing.value.status == 404


async def test_scroll_count_list_and_delete(client: SearchClient, indices: list[str]) -> None:
    prefix = indices[0].split("-", 1)[0]
    hits, scroll_id = await client.scroll_start(
        f"{prefix}-*", {"size": 30, "sort": SORT, "query": {"match_all": {}}}, "1m"
    )
    total = len(hits)
    while hits and scroll_id:
        hits, scroll_id = await client.scroll_next(scroll_id, "1m")
        total += len(hits)
    if scroll_id:
        await client.clear_scroll(scroll_id)
    assert total == 75

    listed = await client.list_indices(f"{prefix}-*")
    assert [i.name for i in listed] == sorted(indices)
    assert all(i.docs == 25 for i in listed)
    assert await client.list_indices("tsearch-none-at-all-*") == []

    query = {"range": {"eventTime": {"lt": "2025-01-11T00:00:00Z"}}}
    assert await client.count(indices[0], query) == 10
    assert await client.count("tsearch-none-at-all", None) == 0
    assert await client.delete_by_query(indices[0], query) == 10
    assert await client.count(indices[0]) == 15

    assert await client.delete_index(indices[2]) is True
    assert await client.delete_index(indices[2]) is False
    with pytest.raises(PermanentError):
        await client.delete_index(f"{prefix}-*")


def scripted(answers: dict[tuple[str, str], tuple[int, Any]]) -> SearchClient:
    """A client whose server answers (method, path) from a table; 404 otherwise."""

    def handle(request: httpx.Request) -> httpx.Response:
        status, body = answers.get((request.method, request.url.path), (404, {"error": "?"}))
        return httpx.Response(status, json=body)

    return SearchClient("http://search.invalid", transport=httpx.MockTransport(handle))


async def test_elasticsearch_pit_is_detected() -> None:
    search = scripted(
        {
            ("POST", "/idx/_search/point_in_time"): (
                400,
                {"error": "no handler found for uri [/idx/_search/point_in_time]"},
            ),
            ("POST", "/idx/_pit"): (200, {"id": "es-pit"}),
        }
    )
    pit = await search.open_point_in_time("idx")
    assert pit is not None
    assert (pit.id, pit.flavour) == ("es-pit", "elasticsearch")
    again = await search.open_point_in_time("idx")  # the flavour is remembered
    assert again is not None
    assert again.flavour == "elasticsearch"
    await search.close()


async def test_no_point_in_time_means_scroll() -> None:
    search = scripted(
        {
            ("POST", "/idx/_search/point_in_time"): (405, {"error": "method not allowed"}),
            ("POST", "/idx/_pit"): (400, {"error": "no handler found for uri [/idx/_pit]"}),
        }
    )
    assert await search.open_point_in_time("idx") is None
    assert await search.open_point_in_time("idx") is None
    await search.close()


async def test_a_bulk_without_errors_and_one_with_errors_are_read_item_by_item_alike(
    client: SearchClient, search_url: str
) -> None:
    """`"errors": false` answers every item accepted without reading each; an answer with
    errors still says which item failed, and why."""
    from stacktrail.search.client import ACCEPTED

    index = f"tbulk{uuid.uuid4().hex[:8]}-a-2025.01"

    def lines(*ids: str) -> bytes:
        return b"".join(
            orjson.dumps({"create": {"_index": index, "_id": i}}) + b"\n" + b'{"n":1}\n'
            for i in ids
        )

    try:
        first = await client.bulk(lines("a", "b", "c"), 3)
        assert first == [ACCEPTED] * 3
        assert all(item.delivered and not item.error for item in first)
        again = await client.bulk(lines("a", "d"), 2)  # "a" exists: a replay's 409
        assert [item.status for item in again] == [409, 201]
        assert again[0].error
        assert again[1].delivered
    finally:
        async with httpx.AsyncClient(base_url=search_url, timeout=60) as http:
            await http.delete(f"/{index}")
