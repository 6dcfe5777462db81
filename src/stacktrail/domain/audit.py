"""Changes of the audit configuration are audited too: CADF events built as plain data.

The API emits one event per change through a callable the composition root provides
(which publishes it into the pipeline like any other service's audit event).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CADF_EVENT_TYPE_URI = "http://schemas.dmtf.org/cloud/audit/1.0/event"
TRAIL_TYPE_URI = "service/audit/trail"
DEFAULTS_TYPE_URI = "service/audit/trail/defaults"
OBSERVER = {"typeURI": "service/audit", "id": "stacktrail", "name": "stacktrail"}

ACTION_UPDATE_TRAIL = "update/trail"
ACTION_DELETE_TRAIL = "delete/trail"
ACTION_UPDATE_DEFAULTS = "update/defaults"

# oslo.messaging event_type to publish each action under
NOTIFICATION_EVENT_TYPES = {
    ACTION_UPDATE_TRAIL: "stacktrail.trail.updated",
    ACTION_DELETE_TRAIL: "stacktrail.trail.deleted",
    ACTION_UPDATE_DEFAULTS: "stacktrail.defaults.updated",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change, as far as the request tells."""

    user_id: str
    user_name: str
    project_id: str | None = None
    domain_id: str | None = None
    address: str | None = None
    agent: str | None = None


def cadf_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def config_change_event(
    *,
    action: str,
    actor: Actor,
    project_id: str | None,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    version: int,
    at: datetime,
    request_path: str = "",
    event_id: str | None = None,
) -> dict[str, Any]:
    """The CADF event of one change of a trail (`project_id`) or of the defaults (None)."""
    initiator: dict[str, Any] = {
        "typeURI": "service/security/account/user",
        "id": actor.user_id,
        "name": actor.user_name,
    }
    if actor.project_id:
        initiator["project_id"] = actor.project_id
    if actor.domain_id:
        initiator["domain_id"] = actor.domain_id
    host = {k: v for k, v in (("address", actor.address), ("agent", actor.agent)) if v}
    if host:
        initiator["host"] = host
    if project_id is None:
        target: dict[str, Any] = {"typeURI": DEFAULTS_TYPE_URI, "id": "defaults"}
    else:
        target = {"typeURI": TRAIL_TYPE_URI, "id": project_id, "project_id": project_id}
    event: dict[str, Any] = {
        "typeURI": CADF_EVENT_TYPE_URI,
        "id": event_id or str(uuid.uuid4()),
        "eventType": "activity",
        "eventTime": cadf_time(at),
        "action": action,
        "outcome": "success",
        "initiator": initiator,
        "target": target,
        "observer": dict(OBSERVER),
        "attachments": [
            {"name": "old", "typeURI": "mime:application/json", "content": old},
            {"name": "new", "typeURI": "mime:application/json", "content": new},
            {"name": "version", "typeURI": "xs:int", "content": version},
        ],
    }
    if request_path:
        event["requestPath"] = request_path
    return event
