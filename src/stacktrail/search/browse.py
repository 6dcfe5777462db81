"""`EventBrowser` on search: a project's events newest first, filtered, by pages.

Indices and the project filter come from `search.reader`, so browsing follows the index
layout the exports read; `search_after` on (eventTime, id) descending keeps pages stable
while new events arrive.
"""

from __future__ import annotations

from typing import Any

from stacktrail.domain.event_browse import EventFilter, EventPage, decode_cursor, encode_cursor
from stacktrail.domain.timeframe import Timeframe
from stacktrail.search.client import SearchClient
from stacktrail.search.documents import PROJECT_FIELD
from stacktrail.search.reader import (
    STAMP_FIELDS,
    TIEBREAK_FIELD,
    TIME_FIELD,
    event_time_query,
    index_target,
    project_indices,
    project_pattern,
)

NEWEST_FIRST: list[dict[str, Any]] = [
    {TIME_FIELD: {"order": "desc"}},
    {TIEBREAK_FIELD: {"order": "desc"}},
]
# filter name -> the CADF fields it matches exactly (any of them)
FIELDS: dict[str, tuple[str, ...]] = {
    "action": ("action",),
    "outcome": ("outcome",),
    "observer": ("observer.typeURI", "observer.name"),
    "initiator": ("initiator.id", "initiator.name"),
    "target_type": ("target.typeURI",),
}


def filter_clauses(filters: EventFilter) -> list[dict[str, Any]]:
    clauses: list[dict[str, Any]] = []
    for name, value in filters.active().items():
        terms = [{"term": {field: value}} for field in FIELDS[name]]
        clauses.append(
            terms[0] if len(terms) == 1 else {"bool": {"should": terms, "minimum_should_match": 1}}
        )
    return clauses


def page_body(
    project_id: str, frame: Timeframe, filters: EventFilter, size: int, cursor: str | None
) -> dict[str, Any]:
    query = {"bool": {"filter": [event_time_query(project_id, frame), *filter_clauses(filters)]}}
    body: dict[str, Any] = {
        "size": size,
        "query": query,
        "sort": NEWEST_FIRST,
        "track_total_hits": True,
    }
    if cursor is not None:
        body["search_after"] = decode_cursor(cursor)
    return body


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = dict(raw.get("_source") or {})
    for name in STAMP_FIELDS:
        source.pop(name, None)
    return source


class SearchEventBrowser:
    def __init__(self, client: SearchClient, template: str) -> None:
        self._client = client
        self._template = template

    async def page(
        self,
        project_id: str,
        frame: Timeframe,
        filters: EventFilter,
        *,
        size: int,
        cursor: str | None,
    ) -> EventPage:
        indices = await project_indices(self._client, self._template, project_id, frame)
        if not indices:
            return EventPage([], None, 0)
        body = page_body(project_id, frame, filters, size, cursor)
        target = index_target(self._template, project_id, indices)
        data = await self._client.search(target, body)
        hits: list[dict[str, Any]] = data.get("hits", {}).get("hits", [])
        total = data.get("hits", {}).get("total")
        count = total.get("value") if isinstance(total, dict) else total
        last = hits[-1].get("sort") if len(hits) == size else None
        return EventPage(
            [_event(hit) for hit in hits],
            encode_cursor(list(last)) if last else None,
            int(count) if isinstance(count, int) else None,
            [index.name for index in indices],
        )

    async def get(self, project_id: str, event_id: str) -> dict[str, Any] | None:
        body = {
            "size": 1,
            "query": {
                "bool": {
                    "filter": [
                        {"term": {PROJECT_FIELD: project_id}},
                        {"term": {TIEBREAK_FIELD: event_id}},
                    ]
                }
            },
        }
        data = await self._client.search(project_pattern(self._template, project_id), body)
        hits: list[dict[str, Any]] = data.get("hits", {}).get("hits", [])
        return _event(hits[0]) if hits else None
