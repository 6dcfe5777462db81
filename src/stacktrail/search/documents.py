"""Pure helpers of the search sink: index names, bulk lines, the index template.

Two layouts (`STACKTRAIL_SEARCH_LAYOUT`):

- `per-project`: one index family per project (`audit-{project_id}-{yyyy.MM}`), what
  the legacy Hermes reads (`audit-{tenant}*`); a copy per trail, `@project_id` says whose.
- `shared`: one index (on a real cluster a data stream), `hermes` by default, what the
  current Hermes reads; one document per event, `tenant_ids` lists every project whose
  trail took it (Hermes filters on it), `@timestamp` is the event time.

Which document wins when events share a CADF id (keystonemiddleware sends the request,
outcome `pending`, and then the response, with the same id): every write is a `create`
(the only op a data stream takes; a replay then never writes twice). A `create` of a
pending event that meets a document leaves it: a pending event never replaces anything.
A `create` of a final event that meets a pending document makes the sink delete that
document (read by id in real time, deleted only if unchanged since) and create again
(see `search.sink`); one that meets a final document is a replay and leaves it. So in
any arrival order and under any number of replays search ends with the final event;
of two different final events with one id the first one written stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from stacktrail.config import SearchLayoutKind as Layout
from stacktrail.domain.delivery import Record
from stacktrail.domain.json_bytes import json_bytes
from stacktrail.search.hermes import hermes_view

INGESTED_FIELD = "@ingested_at"  # when stacktrail took the event; search-sourced export windows
PROJECT_FIELD = "@project_id"  # the trail the copy belongs to (an event can be in two)
TENANTS_FIELD = "tenant_ids"  # shared layout: every project allowed to see the event
TIMESTAMP_FIELD = "@timestamp"  # shared layout: the event time (data streams need it)
PENDING = "pending"  # pycadf's outcome of a request whose response is still to come
TEMPLATE_PREFIX = "stacktrail-"
DEFAULT_MAX_RESULT_WINDOW = 20000  # Hermes pages up to 20000 hits
# A reduced copy (see `reduced_lines`) keeps the whole event here, as a JSON string that is
# not indexed; readers give back this event, not the reduced document.
ORIGINAL_FIELD = "@original"

_PLACEHOLDER = re.compile(r"\{([a-zA-Z_.]+)\}")
_DATE_PARTS = {
    "yyyy.MM.dd": "%Y.%m.%d",
    "yyyy.MM": "%Y.%m",
    "yyyy": "%Y",
    "MM": "%m",
    "dd": "%d",
}


def check_index_template(template: str) -> None:
    """Refuse templates with unknown placeholders or without the project (isolation)."""
    names = _PLACEHOLDER.findall(template)
    unknown = [n for n in names if n != "project_id" and n not in _DATE_PARTS]
    if unknown:
        raise ValueError(f"index template {template!r}: unknown placeholder(s) {unknown}")
    if "project_id" not in names:
        raise ValueError(f"index template {template!r} must contain {{project_id}}")


def index_name(template: str, project_id: str, when: datetime) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "project_id":
            return project_id
        return when.strftime(_DATE_PARTS[name])

    # Index names must be lower case; validated project ids keep this unambiguous in practice.
    return _PLACEHOLDER.sub(fill, template).lower()


def index_pattern(template: str) -> str:
    """`audit-{project_id}-{yyyy.MM}` -> `audit-*` (what the index template applies to)."""
    head = _PLACEHOLDER.split(template, maxsplit=1)[0]
    return head.lower() + "*"


def template_name(template: str) -> str:
    """The index template's name, from the index naming: `audit-{project_id}-...` ->
    `stacktrail-audit`, `prod-audit-{project_id}` -> `stacktrail-prod-audit`; a shared
    index `hermes` -> `stacktrail-hermes`. Deployments with distinct index names on one
    cluster so never overwrite each other's template."""
    head = _PLACEHOLDER.split(template, maxsplit=1)[0].lower()
    stem = re.sub(r"[^a-z0-9._-]", "", head).strip("-_.") or "audit"
    return TEMPLATE_PREFIX + stem


class LayoutSettings(Protocol):
    """The settings a search layout is made of (the config satisfies it)."""

    @property
    def search_index_template(self) -> str: ...
    @property
    def search_layout(self) -> Layout: ...
    @property
    def search_shared_index(self) -> str: ...
    @property
    def search_data_stream(self) -> bool: ...
    @property
    def search_max_result_window(self) -> int: ...


_INDEX_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")


@dataclass(frozen=True, slots=True)
class SearchLayout:
    """Where the search sink writes and what its index template says."""

    template: str = "audit-{project_id}-{yyyy.MM}"
    layout: Layout = Layout.PER_PROJECT
    shared_index: str = "hermes"
    data_stream: bool = True
    max_result_window: int = DEFAULT_MAX_RESULT_WINDOW

    def __post_init__(self) -> None:
        check_index_template(self.template)
        if not _INDEX_NAME.fullmatch(self.shared_index):
            raise ValueError(
                f"shared index {self.shared_index!r}: lower-case letters, digits, `.`, `_`"
                ", `-`, starting with a letter or digit, at most 200 characters"
            )

    @classmethod
    def from_settings(cls, settings: LayoutSettings) -> SearchLayout:
        return cls(
            template=settings.search_index_template,
            layout=settings.search_layout,
            shared_index=settings.search_shared_index,
            data_stream=settings.search_data_stream,
            max_result_window=settings.search_max_result_window,
        )

    @property
    def shared(self) -> bool:
        return self.layout is Layout.SHARED

    @property
    def template_name(self) -> str:
        return template_name(self.shared_index if self.shared else self.template)

    @property
    def pattern(self) -> str:
        """What the index template applies to (and what retention may touch)."""
        return self.shared_index if self.shared else index_pattern(self.template)


class BulkEncoder:
    """Builds the two NDJSON lines of a bulk action per record (the sink's hot path).

    `_id` is the CADF id, so a replay never writes a second document. Index names are
    cached per (project, day); the stamp fields are spliced into the serialised event
    instead of copying the event dict. The document is the event as Hermes reads it
    (`hermes_view`); the event itself is not changed (the archive keeps it).
    """

    def __init__(self, template: str | SearchLayout) -> None:
        self.layout = template if isinstance(template, SearchLayout) else SearchLayout(template)
        self._template = self.layout.template
        self._shared = orjson.dumps(self.layout.shared_index)
        self._indices: dict[tuple[str, int, int, int], bytes] = {}
        # what the names tell apart: a monthly index caches one name per project and
        # month, not one per day (thousands of projects over a week of days)
        formats = [_DATE_PARTS.get(n, "") for n in _PLACEHOLDER.findall(self._template)]
        self._by_day = any("%d" in f for f in formats)
        self._by_month = self._by_day or any("%m" in f for f in formats)
        self._ingested_at: datetime | None = None
        self._ingested = b""
        self._project_stamps: dict[str, bytes] = {}

    def index(self, record: Record) -> str:
        """The index (or data stream) the record's document goes to."""
        return str(orjson.loads(self._index(record.project_id, record.event.time)))

    def _index(self, project_id: str, when: datetime) -> bytes:
        if self.layout.shared:
            return self._shared
        key = (
            project_id,
            when.year,
            when.month if self._by_month else 0,
            when.day if self._by_day else 0,
        )
        name = self._indices.get(key)
        if name is None:
            if len(self._indices) > 100_000:
                self._indices.clear()
            # this cache holds one per project and day (or month, or year)
            name = self._indices[key] = json_bytes(index_name(self._template, project_id, when))
        return name

    def _stamp(self, record: Record) -> tuple[bytes, bytes]:
        """`"@ingested_at":"..."` and `"@project_id":"..."}`, each cached: records come
        with a few ingest times (the dispatcher's clock ticks per millisecond) and
        projects interleaved."""
        if record.ingested_at != self._ingested_at:
            self._ingested_at = record.ingested_at
            self._ingested = orjson.dumps({INGESTED_FIELD: record.ingested_at.isoformat()})[1:-1]
        project = self._project_stamps.get(record.project_id)
        if project is None:
            if len(self._project_stamps) > 100_000:
                self._project_stamps.clear()
            project = orjson.dumps({PROJECT_FIELD: record.project_id})[1:]
            self._project_stamps[record.project_id] = project
        return self._ingested, project

    def lines(self, record: Record) -> bytes:
        event = record.event
        ingested, project = self._stamp(record)
        view = hermes_view(event.body)
        # the common event is its own view: the archive then stores these same bytes
        body = memoryview(event.body_json() if view is event.body else orjson.dumps(view))
        extra = b""
        if self.layout.shared:
            tenants = record.tenants or (record.project_id,)
            extra = (
                orjson.dumps(
                    {TENANTS_FIELD: list(tenants), TIMESTAMP_FIELD: event.time.isoformat()}
                )[1:-1]
                + b","
            )
        return b"".join(
            (
                b'{"create":{"_index":',
                self._index(record.project_id, event.time),
                b',"_id":',
                orjson.dumps(event.id),
                b"}}\n",
                body[:-1],
                b"," if len(body) > 2 else b"",
                extra,
                ingested,
                b",",
                project,
                b"\n",
            )
        )

    def reduced_lines(self, record: Record) -> bytes:
        """The bulk lines of a record's reduced copy (see `reduced_document`): the same
        index, `_id` and stamps as `lines`, so it answers every query the full one would
        on the CADF core."""
        event = record.event
        doc = reduced_document(hermes_view(event.body))
        doc[INGESTED_FIELD] = record.ingested_at.isoformat()
        doc[PROJECT_FIELD] = record.project_id
        if self.layout.shared:
            doc[TENANTS_FIELD] = list(record.tenants or (record.project_id,))
            doc[TIMESTAMP_FIELD] = event.time.isoformat()
        return b"".join(
            (
                b'{"create":{"_index":',
                self._index(record.project_id, event.time),
                b',"_id":',
                orjson.dumps(event.id),
                b"}}\n",
                orjson.dumps(doc),
                b"\n",
            )
        )


def bulk_lines(record: Record, template: str | SearchLayout) -> bytes:
    """The two NDJSON lines of one record (see BulkEncoder)."""
    return BulkEncoder(template).lines(record)


def _keyword() -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": 1024}


def _string() -> dict[str, Any]:
    """A string Hermes queries: exact `term` on the field and on `<field>.keyword` (what
    Logstash's default mapping called it), aggregations on `.keyword`; `.text` holds the
    words for `query_string` searches (`search=project` finds `create/project`)."""
    return {
        "type": "keyword",
        "ignore_above": 1024,
        "fields": {"keyword": _keyword(), "text": {"type": "text"}},
    }


def _id() -> dict[str, Any]:
    """An id: whole (never split on `-`), also as `.keyword`."""
    return {"type": "keyword", "ignore_above": 1024, "fields": {"keyword": _keyword()}}


_RESOURCE_IDS = ("id", "project_id", "domain_id")
_RESOURCE_STRINGS = (
    "typeURI",
    "name",
    "domain",
    "project_name",
    "project_domain_name",
    "domain_name",
)


def index_template_body(template: str | SearchLayout) -> dict[str, Any]:
    """Mappings for the CADF fields as Hermes queries them (see `_string`): ids whole,
    times as dates, attachments kept but not indexed; `index.max_result_window` as set."""
    layout = template if isinstance(template, SearchLayout) else SearchLayout(template)
    resource = {
        "properties": {
            **{name: _id() for name in _RESOURCE_IDS},
            **{name: _string() for name in _RESOURCE_STRINGS},
        }
    }
    properties: dict[str, Any] = {
        "id": _id(),
        "typeURI": _string(),
        "eventTime": {"type": "date"},
        "eventType": _string(),
        "action": _string(),
        "outcome": _string(),
        "requestPath": _string(),
        "reason": {"properties": {"reasonCode": _string(), "reasonType": _string()}},
        "initiator": resource,
        "target": resource,
        "observer": resource,
        "attachments": {"type": "object", "enabled": False},
        INGESTED_FIELD: {"type": "date"},
        PROJECT_FIELD: _keyword(),
    }
    body: dict[str, Any] = {
        "index_patterns": [layout.pattern],
        "priority": 100,
        "template": {
            "settings": {"index": {"max_result_window": layout.max_result_window}},
            "mappings": {
                "properties": properties,
                **unmapped_fields_rule(),
            },
        },
    }
    if not layout.shared:  # many small indices; the shared one takes the cluster's default
        body["template"]["settings"]["index"]["number_of_shards"] = 1
    else:
        properties[TENANTS_FIELD] = _keyword()
        properties[TIMESTAMP_FIELD] = {"type": "date"}
        if layout.data_stream:
            body["data_stream"] = {}
    return body


# --- fields nobody queries, and documents search refuses anyway


def unmapped_fields_rule() -> dict[str, Any]:
    """Only the fields mapped explicitly above are indexed (`dynamic: false`).

    Everything else (attachments' content, tags, vendor extras such as `initiator.host`
    given as a string) stays in the stored document, returned as it came, but is not
    indexed and, above all, cannot add a mapping: otherwise the first odd event of a
    project's month would fix a field's type and search would refuse every normal event
    after it. Not indexed rather than indexed as the text of its JSON, so the stored
    document stays exactly the event (the reader and exports return it unchanged).
    """
    return {"dynamic": False}


_CORE_FIELDS = ("id", "typeURI", "eventType", "action", "outcome", "requestPath")
_RESOURCE_FIELDS = ("id", "typeURI", "name", "project_id", "domain_id", "domain")
_REASON_FIELDS = ("reasonCode", "reasonType")


def _strings(value: Any, names: tuple[str, ...]) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {n: value[n] for n in names if isinstance(value.get(n), str)}


def reduced_document(body: dict[str, Any]) -> dict[str, Any]:
    """The queryable CADF core of an event search refused, plus the event as a string.

    Only string values of keyword fields and the event time (checked by the decoder)
    are copied, so the copy fits the template's mapping whatever the event held.
    """
    doc: dict[str, Any] = _strings(body, _CORE_FIELDS)
    if isinstance(body.get("eventTime"), str):
        doc["eventTime"] = body["eventTime"]
    for name in ("initiator", "target", "observer"):
        part = _strings(body.get(name), _RESOURCE_FIELDS)
        if part:
            doc[name] = part
    reason = _strings(body.get("reason"), _REASON_FIELDS)
    if reason:
        doc["reason"] = reason
    doc[ORIGINAL_FIELD] = orjson.dumps(body).decode()
    return doc
