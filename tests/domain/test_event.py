"""The audit event: its body encoded once for every sink."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import orjson

from stacktrail.domain.event import AuditEvent


def _event(body: dict[str, object]) -> AuditEvent:
    return AuditEvent(
        id="e1",
        time=datetime(2026, 11, 30, tzinfo=UTC),
        event_type="",
        action="create",
        outcome="success",
        target_type="compute/server",
        initiator_project_id="p1",
        target_project_id=None,
        initiator_domain_id=None,
        body=body,
    )


def test_the_body_is_encoded_once_as_compact_json() -> None:
    body = {"id": "e1", "action": "create", "target": {"id": "t", "name": "x" * 2000}}
    event = _event(body)
    encoded = event.body_json()
    assert orjson.loads(encoded) == body
    assert encoded == orjson.dumps(body)
    assert event.body_json() is encoded  # the archive and search share these bytes


def test_the_cache_takes_no_part_in_equality_or_copies() -> None:
    event = _event({"id": "e1"})
    twin = _event({"id": "e1"})
    event.body_json()
    assert event == twin
    copy = replace(event, body={"id": "e2"})
    assert orjson.loads(copy.body_json()) == {"id": "e2"}


def test_a_compacted_event_keeps_its_encoding_and_parses_its_body_again() -> None:
    body = {"id": "e1", "action": "create", "target": {"id": "t", "tags": ["a", "b"]}}
    event = _event(body)
    event.compact()
    encoded = event.body_json()
    assert encoded == orjson.dumps(body)
    assert event.body == body  # parsed from the kept bytes
    assert event.body is event.body  # once
    assert event.body_json() is encoded
    assert event == _event(body)
    assert replace(event, id="e2").body == body


def test_a_compacted_event_holds_little_more_than_its_json() -> None:
    import tracemalloc

    body = {f"k{n}": {"id": f"v{n}", "names": [f"n{m}" for m in range(5)]} for n in range(40)}
    size = len(orjson.dumps(body))
    orjson.loads(orjson.dumps(body))  # orjson keeps the keys it saw in a cache of its own
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        event = _event(orjson.loads(orjson.dumps(body)))
        parsed = tracemalloc.get_traced_memory()[0] - before
        event.compact()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert parsed > 3 * size  # what a waiting event held before
    assert kept < 2 * size, (kept, size)


def test_a_body_json_cannot_hold_is_kept_by_compact() -> None:
    event = _event({"id": "e1", "n": 1 << 70})  # beyond 64 bits: orjson refuses it
    event.compact()
    assert event.body == {"id": "e1", "n": 1 << 70}
