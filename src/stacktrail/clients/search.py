"""Elasticsearch / OpenSearch adapter over plain HTTP (httpx).

Only the REST calls both families share: `_bulk` (NDJSON), `_index_template`, `_search`,
point-in-time, delete-by-query. Official clients are avoided on purpose: the
Elasticsearch 8/9 client sends `compatible-with` media types OpenSearch refuses, and the
OpenSearch client refuses Elasticsearch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from stacktrail.clients.errors import ClientError, PermanentError, TransientError

NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class BulkItem:
    """The result of one document of a bulk request."""

    status: int
    error: str  # "" when the document was accepted

    @property
    def delivered(self) -> bool:
        # 409 on `create`: the document (same CADF id) is already there -> a replay.
        return 200 <= self.status < 300 or self.status == 409

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500


def _classify(response: httpx.Response, what: str) -> None:
    if response.status_code < 300:
        return
    detail = response.text[:500]
    message = f"{what}: HTTP {response.status_code}: {detail}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise TransientError(message, status=response.status_code)
    raise PermanentError(message, status=response.status_code)


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
        return text
    return str(error)


class SearchClient:
    def __init__(
        self,
        base_url: str,
        *,
        username: str = "",
        password: str = "",
        verify: bool = True,
        timeout: float = 30.0,
        max_connections: int = 16,
    ) -> None:
        auth = httpx.BasicAuth(username, password) if username else None
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            verify=verify,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{what}: timed out: {exc}") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{what}: search unreachable: {exc!r}") from exc
        _classify(response, what)
        return response

    async def ping(self) -> dict[str, Any]:
        response = await self._request("GET", "/", "search ping")
        info: dict[str, Any] = response.json()
        return info

    async def bulk(self, body: bytes, expected: int) -> list[BulkItem]:
        """Send an NDJSON bulk body; one BulkItem per action, in order.

        Raises TransientError when the whole request should be retried (unreachable,
        429, 5xx) and PermanentError when the request itself is refused (e.g. 413).
        """
        response = await self._request(
            "POST", "/_bulk", "bulk", content=body, headers={"Content-Type": NDJSON}
        )
        try:
            payload = orjson.loads(response.content)
            items = payload["items"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise TransientError(f"bulk: unreadable response: {response.text[:200]}") from exc
        if len(items) != expected:
            raise TransientError(f"bulk: {len(items)} results for {expected} documents")
        results = []
        for item in items:
            (result,) = item.values()
            status = int(result.get("status", 500))
            error = result.get("error")
            results.append(BulkItem(status, _error_text(error) if error else ""))
        return results

    async def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        await self._request(
            "PUT",
            f"/_index_template/{name}",
            "index template",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json"},
        )

    async def request_json(
        self, method: str, path: str, body: Any = None, *, what: str = "search"
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        response = await self._request(method, path, what, **kwargs)
        if not response.content:
            return {}
        data: dict[str, Any] = orjson.loads(response.content)
        return data


__all__ = ["BulkItem", "ClientError", "SearchClient"]
