"""Small helpers to read what landed in the search server in tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


async def count(url: str, index: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.get(f"/{index}/_count")
        if response.status_code == 404:
            return 0
        response.raise_for_status()
        return int(response.json()["count"])


async def wait_for_count(url: str, index: str, expected: int, timeout: float = 30.0) -> int:
    """Poll until `index` holds `expected` documents (or the timeout); returns the last count."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = -1
    while loop.time() < deadline:
        seen = await count(url, index)
        if seen >= expected:
            return seen
        await asyncio.sleep(0.2)
    return seen


async def get_doc(url: str, index: str, doc_id: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.get(f"/{index}/_doc/{doc_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        source: dict[str, Any] = response.json()["_source"]
        return source


async def ids(url: str, index: str, size: int = 10000) -> set[str]:
    """All `_id`s of an index, via search_after over `_id`-sorted pages."""
    found: set[str] = set()
    after: list[Any] | None = None
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        while True:
            body: dict[str, Any] = {
                "size": min(size, 5000),
                "sort": [{"id": "asc"}],
                "_source": ["id"],
            }
            if after is not None:
                body["search_after"] = after
            response = await http.post(f"/{index}/_search", json=body)
            if response.status_code == 404:
                return found
            response.raise_for_status()
            hits = response.json()["hits"]["hits"]
            if not hits:
                return found
            found.update(hit["_id"] for hit in hits)
            after = hits[-1]["sort"]


class BodyLimit(httpx.AsyncBaseTransport):
    """Sends every request to the real server, but answers 413 (and sends nothing) for a
    body over `max_bytes`, as a reverse proxy with a body limit in front of a cluster does
    (osmem itself takes any size)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.refused = 0
        self.sent_sizes: list[int] = []
        self._real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if len(body) > self.max_bytes:
            self.refused += 1
            return httpx.Response(413, json={"error": "request entity too large"})
        self.sent_sizes.append(len(body))
        return await self._real.handle_async_request(request)

    async def aclose(self) -> None:
        await self._real.aclose()


async def missing(url: str, index: str, doc_ids: set[str]) -> set[str]:
    """Which of `doc_ids` are not in `index` (one `_mget`; no sorting, so it does not
    depend on the index's mapping)."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.post(
            f"/{index}/_mget", params={"_source": "false"}, json={"ids": sorted(doc_ids)}
        )
        if response.status_code == 404:
            return set(doc_ids)
        response.raise_for_status()
        return {doc["_id"] for doc in response.json()["docs"] if not doc.get("found")}
