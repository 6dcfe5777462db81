from __future__ import annotations

import json
from datetime import UTC, datetime

from stacktrail.domain.audit import CADF_EVENT_TYPE_URI, TRAIL_TYPE_URI, Actor, config_change_event

AT = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
ACTOR = Actor("u1", "alice", project_id="p-admin", address="10.0.0.1", agent="curl/8")


def test_trail_change_event() -> None:
    event = config_change_event(
        action="update/trail",
        actor=ACTOR,
        project_id="p1",
        old=None,
        new={"enabled": False},
        version=3,
        at=AT,
        request_path="/v1/projects/p1/trail",
        event_id="e1",
    )
    assert event["typeURI"] == CADF_EVENT_TYPE_URI
    assert event["id"] == "e1"
    assert event["eventType"] == "activity"
    assert event["eventTime"] == "2025-03-04T05:06:07.890123+00:00"
    assert event["action"] == "update/trail"
    assert event["outcome"] == "success"
    assert event["initiator"] == {
        "typeURI": "service/security/account/user",
        "id": "u1",
        "name": "alice",
        "project_id": "p-admin",
        "host": {"address": "10.0.0.1", "agent": "curl/8"},
    }
    assert event["target"] == {"typeURI": TRAIL_TYPE_URI, "id": "p1", "project_id": "p1"}
    assert event["observer"]["id"] == "stacktrail"
    attachments = {a["name"]: a["content"] for a in event["attachments"]}
    assert attachments == {"old": None, "new": {"enabled": False}, "version": 3}
    json.dumps(event)  # plain JSON data


def test_defaults_change_event_has_no_target_project() -> None:
    event = config_change_event(
        action="update/defaults",
        actor=Actor("u2", "root"),
        project_id=None,
        old={},
        new={},
        version=1,
        at=AT,
    )
    assert "project_id" not in event["target"]
    assert "project_id" not in event["initiator"]
    assert "host" not in event["initiator"]
    assert "requestPath" not in event
    assert (
        event["id"]
        != config_change_event(
            action="update/defaults", actor=ACTOR, project_id=None, old={}, new={}, version=1, at=AT
        )["id"]
    )
