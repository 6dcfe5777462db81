"""Pure helpers of the search sink: index names, bulk lines, the index template."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson

from stacktrail.sinks.base import Record

INGESTED_FIELD = "@ingested_at"  # when stacktrail took the event; search-sourced export windows
PROJECT_FIELD = "@project_id"  # the trail the copy belongs to (an event can be in two)
TEMPLATE_NAME = "stacktrail-audit"

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


def bulk_lines(record: Record, template: str) -> bytes:
    """The two NDJSON lines of a `create` action; `_id` is the CADF id so replays answer 409."""
    event = record.event
    action = {
        "create": {
            "_index": index_name(template, record.project_id, event.time),
            "_id": event.id,
        }
    }
    doc = dict(event.body)
    doc[INGESTED_FIELD] = record.ingested_at.isoformat()
    doc[PROJECT_FIELD] = record.project_id
    return orjson.dumps(action) + b"\n" + orjson.dumps(doc) + b"\n"


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
            },
        },
    }
