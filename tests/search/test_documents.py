from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from stacktrail.config import Settings
from stacktrail.domain.delivery import Record, Ticket
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import default_trail
from stacktrail.search.documents import (
    INGESTED_FIELD,
    PROJECT_FIELD,
    BulkEncoder,
    bulk_lines,
    check_index_template,
    index_name,
    index_pattern,
    index_template_body,
)

WHEN = datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)


def test_default_template_is_what_hermes_reads() -> None:
    assert index_name("audit-{project_id}-{yyyy.MM}", "abc123", WHEN) == "audit-abc123-2026.03"
    assert index_name("x-{project_id}-{yyyy.MM.dd}", "P", WHEN) == "x-p-2026.03.09"
    assert index_pattern("audit-{project_id}-{yyyy.MM}") == "audit-*"


@pytest.mark.parametrize(
    "template", ["audit-{yyyy.MM}", "audit-{project_id}-{month}", "audit-{tenant}"]
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="template"):
        check_index_template(template)


def test_bulk_lines_create_with_the_cadf_id() -> None:
    body = {"id": "ev-1", "eventTime": WHEN.isoformat(), "action": "read"}
    event = AuditEvent("ev-1", WHEN, "", "read", "success", "", "p1", None, None, body)
    trail = default_trail("p1", Settings())
    record = Record("p1", event, trail, WHEN, Ticket(None, lambda t: None))
    action, doc, end = bulk_lines(record, "audit-{project_id}-{yyyy.MM}").split(b"\n")
    assert end == b""
    assert orjson.loads(action) == {"create": {"_index": "audit-p1-2026.03", "_id": "ev-1"}}
    parsed = orjson.loads(doc)
    assert parsed[INGESTED_FIELD] == WHEN.isoformat()
    assert parsed[PROJECT_FIELD] == "p1"
    assert "@ingested_at" not in body  # the event itself is not changed


def test_stamps_stay_right_when_projects_and_times_interleave() -> None:
    encoder = BulkEncoder("audit-{project_id}-{yyyy.MM}")
    later = WHEN.replace(microsecond=1000)
    for project, ingested in [("p1", WHEN), ("p2", WHEN), ("p1", later), ("p2", later)]:
        body = {"id": f"{project}-{ingested.microsecond}", "action": "read"}
        event = AuditEvent(body["id"], WHEN, "", "read", "success", "", project, None, None, body)
        record = Record(
            project,
            event,
            default_trail(project, Settings()),
            ingested,
            Ticket(None, lambda t: None),
        )
        document = orjson.loads(encoder.lines(record).split(b"\n")[1])
        assert document == body | {INGESTED_FIELD: ingested.isoformat(), PROJECT_FIELD: project}


def test_template_maps_ids_as_keywords_and_times_as_dates() -> None:
    mappings = index_template_body("audit-{project_id}-{yyyy.MM}")["template"]["mappings"]
    props = mappings["properties"]
    assert props["eventTime"] == {"type": "date"}
    assert props["id"]["type"] == "keyword"
    assert props["initiator"]["properties"]["project_id"]["type"] == "keyword"
