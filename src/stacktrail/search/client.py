"""Elasticsearch / OpenSearch adapter over plain HTTP (httpx).

Only the REST calls both families share: `_bulk` (NDJSON), `_index_template`, `_search`,
point-in-time, delete-by-query. Official clients are avoided on purpose: the
Elasticsearch 8/9 client sends `compatible-with` media types OpenSearch refuses, and the
OpenSearch client refuses Elasticsearch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from stacktrail.config import Settings
from stacktrail.domain.errors import ClientError, PermanentError, TransientError
from stacktrail.http import release

NDJSON = "application/x-ndjson"


@dataclass(frozen=True, slots=True)
class BulkItem:
    """The result of one document of a bulk request."""

    status: int
    error: str  # "" when the document was accepted
    index: str = ""  # where it went (a data stream's backing index)

    @property
    def delivered(self) -> bool:
        # 409 on `create`: the document (same CADF id) is already there -> a replay.
        return 200 <= self.status < 300 or self.status == 409

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500


# Every item of a bulk answered `"errors": false` (one shared, immutable result)
ACCEPTED = BulkItem(201, "")


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
    _pit_flavour: str = ""  # "": not probed yet; "none": scroll only

    def __init__(
        self,
        base_url: str,
        *,
        username: str = "",
        password: str = "",
        verify: bool = True,
        timeout: float = 30.0,
        max_connections: int = 16,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`transport` replaces the network (a test double, a proxy); None: real HTTP."""
        auth = httpx.BasicAuth(username, password) if username else None
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=auth,
            verify=verify,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections),
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SearchClient:
        return cls(
            settings.search_url,
            username=settings.search_username,
            password=settings.search_password,
            verify=settings.search_verify_tls,
            timeout=settings.search_timeout.total_seconds(),
            max_connections=settings.search_max_inflight * 2,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request; unreachable or timed out -> TransientError, any answer returned."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{what}: timed out: {exc}") from exc
        except httpx.TransportError as exc:
            kind = type(exc).__name__
            raise TransientError(f"{what}: search unreachable: {kind}: {exc}") from exc
        return release(response)

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> httpx.Response:
        """One request whose answer must be a success (else the classified error)."""
        response = await self._send(method, path, what, **kwargs)
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
        if payload.get("errors") is False:  # the common answer: no item to look at
            return [ACCEPTED] * expected
        results = []
        for item in items:
            (result,) = item.values()
            status = int(result.get("status", 500))
            error = result.get("error")
            index = result.get("_index")
            results.append(
                BulkItem(
                    status,
                    _error_text(error) if error else "",
                    index if isinstance(index, str) else "",
                )
            )
        return results

    async def get_document(self, index: str, doc_id: str) -> StoredDocument | None:
        """One document by id, in real time (no refresh needed); None when absent."""
        status, data = await self._try_json(
            "GET", f"/{index}/_doc/{quote(doc_id, safe='')}", None, "get document"
        )
        if status == 404:
            return None
        if status >= 300:
            raise PermanentError(f"get document: HTTP {status}: {str(data)[:300]}", status=status)
        source = data.get("_source")
        return StoredDocument(
            str(data.get("_index", index)),
            source if isinstance(source, dict) else {},
            int(data.get("_seq_no", -1)),
            int(data.get("_primary_term", -1)),
        )

    async def delete_document(self, document: StoredDocument, doc_id: str) -> bool:
        """Delete a document if it is still the version read; False when it changed."""
        params = {"if_seq_no": str(document.seq_no), "if_primary_term": str(document.primary_term)}
        status, data = await self._try_json(
            "DELETE",
            f"/{document.index}/_doc/{quote(doc_id, safe='')}",
            None,
            "delete document",
            params,
        )
        if status in (404, 409):
            return False
        if status >= 300:
            raise PermanentError(
                f"delete document: HTTP {status}: {str(data)[:300]}", status=status
            )
        return True

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

    # --- reading many documents: point in time, search_after, scroll

    async def _try_json(
        self, method: str, path: str, body: Any, what: str, params: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Like request_json, but 4xx answers are returned instead of raised."""
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        if params:
            kwargs["params"] = params
        response = await self._send(method, path, what, **kwargs)
        if response.status_code in (408, 429) or response.status_code >= 500:
            _classify(response, what)
        try:
            data = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            data = {"error": response.text[:500]}
        return response.status_code, data if isinstance(data, dict) else {"value": data}

    async def open_point_in_time(self, index: str, keep_alive: str = "5m") -> PointInTime | None:
        """Open a point in time on `index` (names or patterns, comma-separated).

        Tries OpenSearch's `POST /<index>/_search/point_in_time`, then Elasticsearch's
        `POST /<index>/_pit`; the flavour that worked is remembered. None when the server
        has neither (use scroll). `PermanentError` (status 404) when no index matches.
        """
        flavours = [self._pit_flavour] if self._pit_flavour else ["opensearch", "elasticsearch"]
        if self._pit_flavour == "none":
            return None
        for flavour in flavours:
            path = (
                f"/{index}/_search/point_in_time" if flavour == "opensearch" else f"/{index}/_pit"
            )
            status, data = await self._try_json(
                "POST", path, None, "open point in time", {"keep_alive": keep_alive}
            )
            if status < 300:
                pit_id = data.get("pit_id") or data.get("id")
                if isinstance(pit_id, str) and pit_id:
                    self._pit_flavour = flavour
                    return PointInTime(pit_id, flavour, keep_alive)
            if _index_missing(data):
                raise PermanentError(f"open point in time: no index {index}", status=404)
            if status not in (400, 404, 405) or not _no_handler(status, data):
                raise PermanentError(
                    f"open point in time on {index}: HTTP {status}: {str(data)[:300]}",
                    status=status,
                )
        self._pit_flavour = "none"
        return None

    async def close_point_in_time(self, pit: PointInTime) -> None:
        """Release a point in time (errors are ignored: it expires by itself)."""
        body: dict[str, Any]
        if pit.flavour == "opensearch":
            path, body = "/_search/point_in_time", {"pit_id": [pit.id]}
        else:
            path, body = "/_pit", {"id": pit.id}
        with contextlib.suppress(ClientError):
            await self._try_json("DELETE", path, body, "close point in time")

    async def search_pit(
        self, pit: PointInTime, body: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], PointInTime]:
        """One page of a search in a point in time; returns the hits and the (maybe
        renewed) point in time. `body` holds query, sort, size and search_after."""
        data = await self.request_json(
            "POST",
            "/_search",
            {**body, "pit": {"id": pit.id, "keep_alive": pit.keep_alive}},
            what="search (point in time)",
        )
        new_id = data.get("pit_id") or pit.id
        hits: list[dict[str, Any]] = data.get("hits", {}).get("hits", [])
        return hits, PointInTime(str(new_id), pit.flavour, pit.keep_alive)

    async def search(
        self, index: str, body: dict[str, Any], *, ignore_unavailable: bool = True
    ) -> dict[str, Any]:
        """A plain `_search` on `index` (the whole response)."""
        params = "?ignore_unavailable=true&allow_no_indices=true" if ignore_unavailable else ""
        return await self.request_json("POST", f"/{index}/_search{params}", body, what="search")

    async def count(self, index: str, query: dict[str, Any] | None = None) -> int:
        """Documents of `index` matching `query`; 0 when no index matches."""
        body = {"query": query} if query is not None else None
        status, data = await self._try_json(
            "POST",
            f"/{index}/_count",
            body,
            "count",
            {"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        if status == 404:
            return 0
        if status >= 300:
            raise PermanentError(
                f"count on {index}: HTTP {status}: {str(data)[:300]}", status=status
            )
        return int(data.get("count", 0))

    async def scroll_start(
        self, index: str, body: dict[str, Any], keep_alive: str = "5m"
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The first page of a scroll; returns the hits and the scroll id."""
        data = await self.request_json(
            "POST",
            f"/{index}/_search?scroll={keep_alive}&ignore_unavailable=true&allow_no_indices=true",
            body,
            what="scroll",
        )
        hits: list[dict[str, Any]] = data.get("hits", {}).get("hits", [])
        scroll_id = data.get("_scroll_id")
        return hits, str(scroll_id) if scroll_id else None

    async def scroll_next(
        self, scroll_id: str, keep_alive: str = "5m"
    ) -> tuple[list[dict[str, Any]], str | None]:
        data = await self.request_json(
            "POST", "/_search/scroll", {"scroll": keep_alive, "scroll_id": scroll_id}, what="scroll"
        )
        hits: list[dict[str, Any]] = data.get("hits", {}).get("hits", [])
        new_id = data.get("_scroll_id") or scroll_id
        return hits, str(new_id)

    async def clear_scroll(self, scroll_id: str) -> None:
        with contextlib.suppress(ClientError):
            await self._try_json("DELETE", "/_search/scroll", {"scroll_id": [scroll_id]}, "scroll")

    # --- indices and deletion (retention)

    async def list_indices(self, pattern: str) -> list[IndexInfo]:
        """Indices matching `pattern` (e.g. `audit-*`), sorted by name; [] when none."""
        status, data = await self._try_json(
            "GET", f"/_cat/indices/{pattern}", None, "list indices", {"format": "json"}
        )
        if status == 404:
            return []
        if status >= 300:
            raise PermanentError(f"list indices: HTTP {status}: {str(data)[:300]}", status=status)
        rows = data.get("value", [])
        result = []
        for row in rows if isinstance(rows, list) else []:
            name = row.get("index")
            if isinstance(name, str):
                raw = row.get("docs.count")
                docs = int(raw) if isinstance(raw, str | int) and str(raw).isdigit() else 0
                result.append(IndexInfo(name, docs))
        return sorted(result, key=lambda info: info.name)

    async def delete_index(self, name: str) -> bool:
        """Delete one index (never a pattern); False when it did not exist."""
        if not name or any(c in name for c in "*,?") or name.startswith(("_", "-")):
            raise PermanentError(f"refusing to delete index {name!r}: not a single index name")
        status, data = await self._try_json("DELETE", f"/{name}", None, "delete index")
        if status == 404:
            return False
        if status >= 300:
            raise PermanentError(
                f"delete index {name}: HTTP {status}: {str(data)[:300]}", status=status
            )
        return True

    async def delete_by_query(
        self, index: str, query: dict[str, Any], *, refresh: bool = True
    ) -> int:
        """Delete the documents of `index` matching `query`; returns how many went."""
        params = "conflicts=proceed&ignore_unavailable=true&allow_no_indices=true"
        if refresh:
            params += "&refresh=true"
        data = await self.request_json(
            "POST", f"/{index}/_delete_by_query?{params}", {"query": query}, what="delete by query"
        )
        failures = data.get("failures") or []
        if failures:
            raise TransientError(f"delete by query on {index}: {str(failures)[:300]}")
        return int(data.get("deleted", 0))


@dataclass(frozen=True, slots=True)
class PointInTime:
    """An open point in time; `flavour` is `opensearch` or `elasticsearch`."""

    id: str
    flavour: str
    keep_alive: str


@dataclass(frozen=True, slots=True)
class StoredDocument:
    index: str  # the concrete index (a data stream's backing index)
    source: dict[str, Any]
    seq_no: int
    primary_term: int


@dataclass(frozen=True, slots=True)
class IndexInfo:
    name: str
    docs: int


def _index_missing(data: dict[str, Any]) -> bool:
    error = data.get("error")
    return isinstance(error, dict) and error.get("type") == "index_not_found_exception"


def _no_handler(status: int, data: dict[str, Any]) -> bool:
    """The server does not know the endpoint (rather than refusing the request)."""
    if status in (404, 405):
        return True
    text = str(data.get("error", ""))
    return "no handler" in text or "unrecognized" in text.lower()


__all__ = ["BulkItem", "ClientError", "IndexInfo", "PointInTime", "SearchClient"]
