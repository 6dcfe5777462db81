from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime

import orjson
import pytest

from stacktrail.config import SearchLayoutKind as Layout
from stacktrail.config import Settings
from stacktrail.domain.delivery import Record, Ticket
from stacktrail.domain.event import AuditEvent
from stacktrail.domain.trail import default_trail
from stacktrail.search.documents import (
    INGESTED_FIELD,
    PROJECT_FIELD,
    BulkEncoder,
    SearchLayout,
    bulk_lines,
    check_index_template,
    index_name,
    index_pattern,
    index_template_body,
    template_name,
)

WHEN = datetime(2026, 3, 9, 23, 59, 59, tzinfo=UTC)
TEMPLATE = "audit-{project_id}-{yyyy.MM}"


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


def _record(outcome: str, project: str = "p1", tenants: tuple[str, ...] = ()) -> Record:
    body = {"id": "ev-1", "eventTime": WHEN.isoformat(), "action": "read", "outcome": outcome}
    event = AuditEvent("ev-1", WHEN, "", "read", outcome, "", project, None, None, body)
    trail = default_trail(project, Settings())
    return Record(project, event, trail, WHEN, Ticket(None, lambda t: None), tenants)


def test_every_write_is_a_create_so_a_data_stream_takes_it() -> None:
    layout = SearchLayout(TEMPLATE, Layout.SHARED, "hermes", data_stream=True)
    for outcome in ("pending", "success"):
        action = orjson.loads(bulk_lines(_record(outcome), layout).split(b"\n")[0])
        assert action == {"create": {"_index": "hermes", "_id": "ev-1"}}


def test_the_shared_layout_writes_tenants_and_timestamp() -> None:
    layout = SearchLayout(TEMPLATE, Layout.SHARED, "hermes", data_stream=False)
    lines = bulk_lines(_record("success", "p1", ("p1", "p2")), layout).split(b"\n")
    assert orjson.loads(lines[0]) == {"create": {"_index": "hermes", "_id": "ev-1"}}
    doc = orjson.loads(lines[1])
    assert doc["tenant_ids"] == ["p1", "p2"]
    assert doc["@timestamp"] == WHEN.isoformat()


def test_template_names_follow_the_index_naming() -> None:
    assert template_name(TEMPLATE) == "stacktrail-audit"  # the name it always had
    assert template_name("prod-audit-{project_id}-{yyyy.MM}") == "stacktrail-prod-audit"
    assert template_name("{project_id}-{yyyy}") == "stacktrail-audit"
    assert (
        SearchLayout(TEMPLATE, Layout.SHARED, "hermes-eu").template_name == "stacktrail-hermes-eu"
    )
    # two deployments on one cluster: two templates
    assert len({template_name(f"{d}-audit-{{project_id}}") for d in ("qa", "prod")}) == 2


def test_template_answers_hermes_terms_on_field_and_keyword() -> None:
    body = index_template_body(SearchLayout(TEMPLATE, max_result_window=12345))
    assert body["template"]["settings"]["index"]["max_result_window"] == 12345
    props = body["template"]["mappings"]["properties"]
    for field in (props["action"], props["target"]["properties"]["typeURI"]):
        assert field["type"] == "keyword"
        assert field["fields"]["keyword"]["type"] == "keyword"
    assert props["id"]["type"] == "keyword"  # whole, never split on `-`
    # every field Hermes queries is mapped explicitly; anything else is stored, not
    # indexed, so one odd event can never fix a mapping (see unmapped_fields_rule)
    assert body["template"]["mappings"]["dynamic"] is False
    assert "data_stream" not in body


def test_shared_template_declares_a_data_stream_unless_told_not_to() -> None:
    body = index_template_body(SearchLayout(TEMPLATE, Layout.SHARED, "hermes"))
    assert body["data_stream"] == {}
    assert body["index_patterns"] == ["hermes"]
    props = body["template"]["mappings"]["properties"]
    assert props["tenant_ids"]["type"] == "keyword"
    assert props["@timestamp"] == {"type": "date"}
    plain = index_template_body(SearchLayout(TEMPLATE, Layout.SHARED, "hermes", data_stream=False))
    assert "data_stream" not in plain


@pytest.mark.parametrize("name", ["", "Hermes", "_hermes", "a/b", "x*"])
def test_bad_shared_index_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="shared index"):
        SearchLayout(TEMPLATE, Layout.SHARED, name)


def test_index_names_of_thousands_of_projects_stay_small() -> None:
    """The encoder caches an index name per project and month (what a monthly name tells
    apart); 5,000 active projects cost a few hundred bytes each (orjson's own buffers
    would keep 4 KiB each)."""
    encoder = BulkEncoder("audit-{project_id}-{yyyy.MM}")
    when = datetime(2026, 11, 1, tzinfo=UTC)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        names = [encoder._index(f"{i:032x}", when) for i in range(5000)]
        per_project = (tracemalloc.get_traced_memory()[0] - before) / 5000
    finally:
        tracemalloc.stop()
    assert names[7] == b'"audit-00000000000000000000000000000007-2026.11"'
    assert per_project < 1000, f"{per_project:.0f} bytes per project"


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("audit-{project_id}-{yyyy.MM}", 2),  # one per month: Mar and Apr
        ("audit-{project_id}-{yyyy.MM.dd}", 8),
        ("audit-{project_id}-{yyyy}", 1),
    ],
)
def test_index_names_are_cached_as_finely_as_the_template_tells_dates_apart(
    template: str, names: int
) -> None:
    encoder = BulkEncoder(template)
    days = [datetime(2026, 3, 28 + n, tzinfo=UTC) for n in range(4)]
    days += [datetime(2026, 4, 1 + n, tzinfo=UTC) for n in range(4)]
    for when in days * 2:
        assert orjson.loads(encoder._index("p1", when)) == index_name(template, "p1", when)
    assert len(encoder._indices) == names
