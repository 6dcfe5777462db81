"""A bulk request's body must not outlive the request (the collector runs rarely)."""

from __future__ import annotations

import gc
import sys
import uuid

import httpx
import orjson

from stacktrail.http import release
from stacktrail.search.client import SearchClient


async def test_bulk_body_is_freed_without_the_collector(search_url: str) -> None:
    client = SearchClient(search_url)
    index = f"thttp{uuid.uuid4().hex[:8]}"
    body = (
        orjson.dumps({"create": {"_index": index, "_id": "1"}})
        + b"\n"
        + orjson.dumps({"id": "1", "blob": "x" * 100_000})
        + b"\n"
    )
    before = sys.getrefcount(body)
    gc.disable()
    try:
        items = await client.bulk(body, 1)
        # Nothing but this test refers to the body any more: no cycle holds it.
        assert sys.getrefcount(body) == before
    finally:
        gc.enable()
        await client.close()
    assert items[0].delivered


async def test_released_response_keeps_its_content(search_url: str) -> None:
    async with httpx.AsyncClient(base_url=search_url) as http:
        response = release(await http.get("/"))
    assert response.json()["version"]["number"]
    assert response.content
