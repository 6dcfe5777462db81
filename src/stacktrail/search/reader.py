"""Reading a project's events out of search, in a stable order, resumable.

Order: `eventTime` ascending, then the CADF `id` (a keyword field equal to `_id`: the
search sink indexes every event under its CADF id). `id` rather than `_id` as the
tiebreak because Elasticsearch 8 refuses to sort on `_id` by default; the order is the
same. Being total and independent of the server's internals, the order survives a new
point in time, so an interrupted read resumes after the last sort values it handed out.

How pages are fetched, best first (detected once per client):
1. a point in time + `search_after` (OpenSearch `_search/point_in_time`, Elasticsearch
   `_pit`): a consistent snapshot, no server-side cursor to lose;
2. scroll (servers with neither): resuming then adds a keyset condition
   (`eventTime > t or (eventTime = t and id > last)`) to the query, since scroll
   cannot be combined with `search_after`.

Which indices: the template's indices of the project (the name pattern, then each name
matched exactly, so project `ab` never reads `ab-c`'s indices), pruned to those whose
date span can hold events of the frame; documents are filtered on `@project_id` too.
In the shared layout: the shared index, documents filtered on `tenant_ids`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from stacktrail.domain.errors import PermanentError
from stacktrail.domain.json_bytes import json_bytes
from stacktrail.domain.timeframe import Timeframe, iso
from stacktrail.search.client import PointInTime, SearchClient
from stacktrail.search.documents import (
    INGESTED_FIELD,
    ORIGINAL_FIELD,
    PROJECT_FIELD,
    TENANTS_FIELD,
    TIMESTAMP_FIELD,
    SearchLayout,
    check_index_template,
)

log = logging.getLogger(__name__)

TIME_FIELD = "eventTime"
TIEBREAK_FIELD = "id"
SORT: list[dict[str, Any]] = [
    {TIME_FIELD: {"order": "asc"}},
    {TIEBREAK_FIELD: {"order": "asc"}},
]
# stacktrail's own, not part of the event
STAMP_FIELDS = (INGESTED_FIELD, PROJECT_FIELD, TENANTS_FIELD, TIMESTAMP_FIELD)
Naming = str | SearchLayout  # an index name template (per-project layout), or the layout
ALL_TIME = (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
MAX_NAMED_INDICES = 64  # beyond: query the pattern (URL length), the filter still isolates

SortValues = list[Any]

_PLACEHOLDER = re.compile(r"\{([a-zA-Z_.]+)\}")
_DATE_REGEX = {
    "yyyy.MM.dd": r"(?P<y{n}>\d{{4}})\.(?P<m{n}>\d{{2}})\.(?P<d{n}>\d{{2}})",
    "yyyy.MM": r"(?P<y{n}>\d{{4}})\.(?P<m{n}>\d{{2}})",
    "yyyy": r"(?P<y{n}>\d{{4}})",
    "MM": r"(?P<m{n}>\d{{2}})",
    "dd": r"(?P<d{n}>\d{{2}})",
}


class ReadMode(StrEnum):
    AUTO = "auto"
    PIT = "pit"
    SCROLL = "scroll"


class NoIndexError(PermanentError):
    """The project has no index in search (unknown project, or nothing ever indexed)."""


@dataclass(frozen=True, slots=True)
class ProjectIndex:
    """One index of a project and the UTC time span its name says it covers."""

    name: str
    start: datetime
    end: datetime  # exclusive
    docs: int = 0
    project_id: str = ""


# --- index names


def _project_regex(template: str, project_id: str | None) -> re.Pattern[str]:
    """Names of the template's indices: of one project, or of any (group `project`)."""
    check_index_template(template)
    parts: list[str] = []
    pos = 0
    seen_project = False
    for n, match in enumerate(_PLACEHOLDER.finditer(template)):
        parts.append(re.escape(template[pos : match.start()].lower()))
        name = match.group(1)
        if name == "project_id" and project_id is not None:
            parts.append(re.escape(project_id.lower()))
        elif name == "project_id":
            parts.append("(?P=project)" if seen_project else "(?P<project>[a-z0-9_-]+)")
            seen_project = True
        else:
            parts.append(_DATE_REGEX[name].format(n=n))
        pos = match.end()
    parts.append(re.escape(template[pos:].lower()))
    return re.compile("^" + "".join(parts) + "$")


def _date_parts(match: re.Match[str]) -> dict[str, int] | None:
    """y/m/d from a name; None when a part repeated in the template differs."""
    parts: dict[str, int] = {}
    for group, value in match.groupdict().items():
        if value is None or group == "project":
            continue
        letter, number = group[0], int(value)
        if parts.setdefault(letter, number) != number:
            return None
    return parts


def project_pattern(naming: Naming, project_id: str) -> str:
    """`audit-{project_id}-{yyyy.MM}` -> `audit-<project>-*` (a superset of its indices);
    the shared index in the shared layout."""
    shared = _shared(naming)
    if shared is not None:
        return shared
    template = _template(naming)
    check_index_template(template)

    def fill(match: re.Match[str]) -> str:
        return project_id.lower() if match.group(1) == "project_id" else "*"

    pattern = _PLACEHOLDER.sub(fill, template).lower()
    return re.sub(r"\*+", "*", pattern)


def index_span(template: str, project_id: str, name: str) -> tuple[datetime, datetime] | None:
    """The UTC span an index of the project covers; None when the name is not one of its."""
    match = _project_regex(template, project_id).match(name)
    if match is None:
        return None
    return _span(match)


def parse_index_name(template: str, name: str) -> ProjectIndex | None:
    """Project id (as written in the name: lower case) and span of any template index."""
    match = _project_regex(template, None).match(name)
    if match is None:
        return None
    span = _span(match)
    if span is None:
        return None
    return ProjectIndex(name, span[0], span[1], project_id=match.group("project"))


def _span(match: re.Match[str]) -> tuple[datetime, datetime] | None:
    parts = _date_parts(match)
    if parts is None:
        return None
    if "y" not in parts:  # no year in the template: any time
        return datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    year = parts["y"]
    try:
        if "m" not in parts:
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        month = parts["m"]
        if "d" not in parts:
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            return start, end
        start = datetime(year, month, parts["d"], tzinfo=UTC)
        return start, start + timedelta(days=1)
    except ValueError:
        return None


def _shared(naming: Naming) -> str | None:
    """The shared index when the layout is shared, else None."""
    if isinstance(naming, SearchLayout) and naming.shared:
        return naming.shared_index
    return None


def _template(naming: Naming) -> str:
    return naming.template if isinstance(naming, SearchLayout) else naming


async def project_indices(
    client: SearchClient, naming: Naming, project_id: str, frame: Timeframe | None = None
) -> list[ProjectIndex]:
    """The project's indices (by name), those that may hold events of `frame` if given.

    In the shared layout: the shared index, when the project has documents in it."""
    shared = _shared(naming)
    if shared is not None:
        docs = await client.count(shared, {"term": {TENANTS_FIELD: project_id}})
        return [ProjectIndex(shared, *ALL_TIME, docs, project_id)] if docs else []
    template = _template(naming)
    found = []
    for info in await client.list_indices(project_pattern(template, project_id)):
        span = index_span(template, project_id, info.name)
        if span is None:
            continue
        start, end = span
        if frame is not None and (end <= frame.start or start >= frame.end):
            continue
        found.append(ProjectIndex(info.name, start, end, info.docs, project_id))
    return found


def index_target(naming: Naming, project_id: str, indices: Sequence[ProjectIndex]) -> str:
    """What to put in the URL: the names themselves, or the pattern when there are many."""
    shared = _shared(naming)
    if shared is not None:
        return shared
    template = _template(naming)
    if 0 < len(indices) <= MAX_NAMED_INDICES:
        return ",".join(index.name for index in indices)
    return project_pattern(template, project_id)


# --- queries


def event_time_query(project_id: str, frame: Timeframe) -> dict[str, Any]:
    """The project's events with `frame.start <= eventTime < frame.end`."""
    return _filtered(project_id, TIME_FIELD, frame)


def ingested_query(project_id: str, frame: Timeframe) -> dict[str, Any]:
    """The project's events stacktrail ingested within `frame` (`@ingested_at`)."""
    return _filtered(project_id, INGESTED_FIELD, frame)


def _filtered(project_id: str, field: str, frame: Timeframe) -> dict[str, Any]:
    # `@project_id` holds the trail of a per-project copy; `tenant_ids` every trail of a
    # shared document: the one query serves both layouts
    return {
        "bool": {
            "filter": [
                {
                    "bool": {
                        "should": [
                            {"term": {PROJECT_FIELD: project_id}},
                            {"term": {TENANTS_FIELD: project_id}},
                        ],
                        "minimum_should_match": 1,
                    }
                },
                {"range": {field: {"gte": iso(frame.start), "lt": iso(frame.end)}}},
            ]
        }
    }


def after_query(query: dict[str, Any], after: SortValues) -> dict[str, Any]:
    """`query` restricted to what sorts after `after` (for scroll, which has no search_after)."""
    time_ms, last_id = after
    keyset = {
        "bool": {
            "should": [
                {"range": {TIME_FIELD: {"gt": time_ms, "format": "epoch_millis"}}},
                {
                    "bool": {
                        "filter": [
                            {
                                "range": {
                                    TIME_FIELD: {
                                        "gte": time_ms,
                                        "lte": time_ms,
                                        "format": "epoch_millis",
                                    }
                                }
                            },
                            {"range": {TIEBREAK_FIELD: {"gt": last_id}}},
                        ]
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }
    return {"bool": {"filter": [query, keyset]}}


# --- reading


@dataclass(slots=True)
class Hit:
    """One event: its record bytes (the event without stacktrail's stamps) and sort values."""

    record: bytes
    event: dict[str, Any]
    sort: SortValues

    @property
    def time_ms(self) -> int:
        return int(self.sort[0])


def to_hit(raw: dict[str, Any]) -> Hit:
    source: dict[str, Any] = raw.get("_source") or {}
    for name in STAMP_FIELDS:
        source.pop(name, None)
    original = source.get(ORIGINAL_FIELD)
    if isinstance(original, str):  # a reduced copy: the event is kept whole as a string
        source = orjson.loads(original)
    return Hit(json_bytes(source), source, list(raw.get("sort") or []))


class EventReader:
    """Pages of a project's events in the export order (see the module doc)."""

    def __init__(
        self,
        client: SearchClient,
        *,
        page_size: int = 2000,
        keep_alive: str = "5m",
        mode: ReadMode = ReadMode.AUTO,
    ) -> None:
        self._client = client
        self._page_size = page_size
        self._keep_alive = keep_alive
        self._mode = mode
        self.used_mode: ReadMode | None = None

    async def pages(
        self, index: str, query: dict[str, Any], after: SortValues | None = None
    ) -> AsyncGenerator[list[Hit], None]:
        """Yield non-empty pages of hits sorted by (eventTime, id), after `after` if given."""
        pit: PointInTime | None = None
        if self._mode is not ReadMode.SCROLL:
            pit = await self._client.open_point_in_time(index, self._keep_alive)
            if pit is None and self._mode is ReadMode.PIT:
                raise PermanentError("the search server supports no point in time")
        if pit is not None:
            self.used_mode = ReadMode.PIT
            async for page in self._pit_pages(pit, query, after):
                yield page
            return
        self.used_mode = ReadMode.SCROLL
        async for page in self._scroll_pages(index, query, after):
            yield page

    async def _pit_pages(
        self, pit: PointInTime, query: dict[str, Any], after: SortValues | None
    ) -> AsyncGenerator[list[Hit], None]:
        try:
            while True:
                body: dict[str, Any] = {
                    "size": self._page_size,
                    "query": query,
                    "sort": SORT,
                    "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                raw, pit = await self._client.search_pit(pit, body)
                if not raw:
                    return
                hits = [to_hit(item) for item in raw]
                after = hits[-1].sort
                yield hits
                if len(raw) < self._page_size:
                    return
        finally:
            await self._client.close_point_in_time(pit)

    async def _scroll_pages(
        self, index: str, query: dict[str, Any], after: SortValues | None
    ) -> AsyncGenerator[list[Hit], None]:
        body = {
            "size": self._page_size,
            "query": after_query(query, after) if after is not None else query,
            "sort": SORT,
        }
        raw, scroll_id = await self._client.scroll_start(index, body, self._keep_alive)
        try:
            while raw:
                yield [to_hit(item) for item in raw]
                if scroll_id is None or len(raw) < self._page_size:
                    return
                raw, scroll_id = await self._client.scroll_next(scroll_id, self._keep_alive)
        finally:
            if scroll_id is not None:
                await self._client.clear_scroll(scroll_id)
