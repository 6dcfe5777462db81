"""Pure helpers of the search sink: index names, bulk lines, the index template."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from stacktrail.domain.delivery import Record

INGESTED_FIELD = "@ingested_at"  # when stacktrail took the event; search-sourced export windows
PROJECT_FIELD = "@project_id"  # the trail the copy belongs to (an event can be in two)
TEMPLATE_NAME = "stacktrail-audit"
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


class BulkEncoder:
    """Builds the two NDJSON lines of a `create` action per record (the sink's hot path).

    `_id` is the CADF id, so a replay answers 409 instead of writing twice. Index names are
    cached per (project, day); the stamp fields are spliced into the serialised event
    instead of copying the event dict.
    """

    def __init__(self, template: str) -> None:
        check_index_template(template)
        self._template = template
        self._indices: dict[tuple[str, int, int, int], bytes] = {}
        self._ingested_at: datetime | None = None
        self._ingested = b""
        self._project_stamps: dict[str, bytes] = {}

    def _index(self, project_id: str, when: datetime) -> bytes:
        key = (project_id, when.year, when.month, when.day)
        name = self._indices.get(key)
        if name is None:
            if len(self._indices) > 100_000:
                self._indices.clear()
            name = self._indices[key] = orjson.dumps(index_name(self._template, project_id, when))
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
        body = orjson.dumps(event.body)
        return b"".join(
            (
                b'{"create":{"_index":',
                self._index(record.project_id, event.time),
                b',"_id":',
                orjson.dumps(event.id),
                b"}}\n",
                body[:-1],
                b"," if len(body) > 2 else b"",
                ingested,
                b",",
                project,
                b"\n",
            )
        )


def bulk_lines(record: Record, template: str) -> bytes:
    """The two NDJSON lines of one record (see BulkEncoder)."""
    return BulkEncoder(template).lines(record)


def _keyword() -> dict[str, Any]:
    return {"type": "keyword", "ignore_above": 1024}


def index_template_body(template: str) -> dict[str, Any]:
    """Mappings for the CADF fields: ids as keyword, times as dates, free text kept."""
    resource = {
        "properties": {
            "id": _keyword(),
            "typeURI": _keyword(),
            "name": _keyword(),
            "project_id": _keyword(),
            "domain_id": _keyword(),
            "domain": _keyword(),
        }
    }
    return {
        "index_patterns": [index_pattern(template)],
        "priority": 100,
        "template": {
            "settings": {"index": {"number_of_shards": 1}},
            "mappings": {
                "dynamic_templates": [
                    {"strings": {"match_mapping_type": "string", "mapping": _keyword()}}
                ],
                "properties": {
                    "id": _keyword(),
                    "typeURI": _keyword(),
                    "eventTime": {"type": "date"},
                    "eventType": _keyword(),
                    "action": _keyword(),
                    "outcome": _keyword(),
                    "requestPath": _keyword(),
                    "reason": {"properties": {"reasonCode": _keyword(), "reasonType": _keyword()}},
                    "initiator": resource,
                    "target": resource,
                    "observer": resource,
                    "attachments": {"type": "object", "enabled": False},
                    INGESTED_FIELD: {"type": "date"},
                    PROJECT_FIELD: _keyword(),
                },
                **unmapped_fields_rule(),
            },
        },
    }


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


def reduced_lines(record: Record, template: str) -> bytes:
    """The bulk lines of a record's reduced copy (same index and `_id` as the full one)."""
    event = record.event
    doc = reduced_document(event.body)
    doc[INGESTED_FIELD] = record.ingested_at.isoformat()
    doc[PROJECT_FIELD] = record.project_id
    action = {"create": {"_index": index_name(template, record.project_id, event.time)}}
    action["create"]["_id"] = event.id
    return orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n"
